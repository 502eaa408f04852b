from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractors import linker as lk
from extractors.errors import TaxonomyError

ESCO_HEADER = "conceptType,conceptUri,skillType,reuseLevel,preferredLabel,altLabels,description\n"
ESCO_ROWS = [
    ("u:python", "knowledge", "cross-sector", "Python (computer programming)", "Python\npython 3",
     "The techniques and principles of software development in Python."),
    ("u:teams", "skill/competence", "transversal", "work in teams", "teamwork\nwork in a team",
     "Cooperate with others in a group."),
    ("u:eng", "knowledge", "transversal", "English", "English language", "The English language."),
]


@pytest.fixture(scope="module")
def toy_index(toy_taxonomy) -> lk.ConceptIndex:  # type: ignore[no-untyped-def]
    return lk.ConceptIndex(lk.taxonomy_entries(toy_taxonomy))


@pytest.fixture(scope="module")
def toy_model(toy_index: lk.ConceptIndex) -> dict:
    rng = np.random.default_rng(lk.SEED)
    data = lk.synthetic_esco(toy_index, 120, rng, p_hold=0.3)
    x, y, groups = lk.featurise(toy_index, data)
    assert x.shape == (len(y), len(lk.FEATURES)) and len(groups) == len(y) and 0 < y.sum() < len(y)
    return lk.model_dict(lk.fit_reranker(x, y), {"python": 3.0}, {"seed": lk.SEED})


def _write_esco(folder: Path) -> Path:
    (folder / "en").mkdir(parents=True)
    lines = [ESCO_HEADER]
    for uri, kind, reuse, label, alts, desc in ESCO_ROWS:
        lines.append(f'KnowledgeSkillCompetence,{uri},{kind},{reuse},{label},"{alts}",{desc}\n')
    (folder / "en" / "skills_en.csv").write_text("".join(lines), encoding="utf-8")
    return folder


def test_esco_entries_read_uris_labels_and_descriptions(tmp_path: Path) -> None:
    entries = lk.load_entries(f"esco:{_write_esco(tmp_path / 'esco')}")
    assert [e.id for e in entries] == ["u:python", "u:teams", "u:eng"]
    python = entries[0]
    assert python.label == "Python (computer programming)"
    assert python.labels == ("Python (computer programming)", "Python", "python 3")
    assert python.skill_type == "knowledge" and "software" in python.description


def test_missing_esco_folder_is_a_taxonomy_error(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="T001"):
        lk.load_entries(f"esco:{tmp_path}")


def test_normalisation_keeps_tech_tokens_and_lemmatises() -> None:
    assert lk.word_tokens("C++, C# and Node.js.") == ["c++", "c#", "and", "node.js"]
    assert lk.normalise_words("Managing the teams") == "manage team"


def test_untrained_retrieval_ranks_the_mentioned_concepts_first(toy_index: lk.ConceptIndex) -> None:
    linker = lk.Linker(None, toy_index)
    [ranked] = linker.rank(["Experience with Python 3 and structured query language"], top_k=3)
    assert {cid for cid, _, _ in ranked[:2]} == {"python", "sql"}
    scores = [s for _, _, s in ranked]
    assert scores == sorted(scores, reverse=True)


def test_trained_model_ranks_and_is_deterministic(toy_index: lk.ConceptIndex, toy_model: dict) -> None:
    linker = lk.Linker(toy_model, toy_index)
    sentences = ["Good knowledge of MS Excel is required", "You will do data analytics in SQL"]
    first = linker.rank(sentences, top_k=3)
    assert first == linker.rank(sentences, top_k=3)
    assert first[0][0][0] == "ms_excel"
    assert {"data_analysis", "sql"} <= {cid for cid, _, _ in first[1][:3]}
    assert all(0.0 <= s <= 1.0 for row in first for _, _, s in row)


def test_model_with_other_features_is_refused(toy_index: lk.ConceptIndex, toy_model: dict) -> None:
    stale = dict(toy_model, feature_names=["something_else"])
    with pytest.raises(Exception, match="M002"):
        lk.Linker(stale, toy_index)


def test_hidden_labels_do_not_leak_into_features(toy_index: lk.ConceptIndex) -> None:
    sentence = ["structured query language"]
    sql = toy_index.position["sql"]
    rows = set(range(int(toy_index.pref_row[sql]), int(toy_index.pref_row[sql] + toy_index.n_labels[sql])))
    [open_] = toy_index.candidates(sentence, must_include=[[sql]])
    [hidden] = toy_index.candidates(sentence, exclude_labels=[sorted(rows)], must_include=[[sql]])
    col = lk.FEATURES.index("exact_any")
    assert open_.features[list(open_.concepts).index(sql), col] == 1.0
    row = list(hidden.concepts).index(sql)
    assert hidden.features[row, col] == 0.0
    assert hidden.features[row, lk.FEATURES.index("doc_cos")] == pytest.approx(0.0, abs=1e-6)
    assert hidden.features[row, lk.FEATURES.index("lsa_cos")] == pytest.approx(0.0, abs=1e-6)


def test_verbatim_and_silver_linking(toy_index: lk.ConceptIndex) -> None:
    found = lk.verbatim_rank(toy_index, "We use MS Excel and e-mail daily")
    assert {toy_index.ids[c] for c, _ in found} == {"ms_excel", "email"}
    rng = np.random.default_rng(0)
    silver = lk.silver_from_spans(toy_index, [("Strong SQL and Excel skills", ["SQL", "Excel"]),
                                              ("Nothing here", [])], rng, p_hold=0.0)
    assert silver.sentences == ["Strong SQL and Excel skills"]
    assert silver.positives == [{toy_index.position["sql"], toy_index.position["ms_excel"]}]
    prior = lk.silver_prior(toy_index, ["Excel and SQL", "excel", "nothing"])
    assert prior == {"ms_excel": 2.0, "sql": 1.0}


def test_in_context_replacement_keeps_sentence_and_marks_positives(toy_index: lk.ConceptIndex) -> None:
    rng = np.random.default_rng(1)
    data = lk.synthetic_in_context(toy_index, [("You know SQL and Excel well", ["SQL", "Excel"])], rng, p_hold=1.0)
    [text] = data.sentences
    assert text.startswith("You know ") and text.endswith(" well")
    assert len(data.positives[0]) == 2 and len(data.exclude[0]) == 2


def test_cover_and_bm25_features(toy_index: lk.ConceptIndex) -> None:
    [cands] = toy_index.candidates(["Python"], must_include=[[toy_index.position["sql"]]])
    python, sql = list(cands.concepts).index(toy_index.position["python"]), list(cands.concepts).index(
        toy_index.position["sql"])
    f = {name: cands.features[:, i] for i, name in enumerate(lk.FEATURES)}
    assert f["sent_cover"][python] == pytest.approx(1.0)  # the one sentence word is a Python label
    assert f["sent_cover"][sql] == 0.0
    assert f["bm25_doc"][python] == pytest.approx(1.0) and f["bm25_gap"][python] == pytest.approx(0.0)
    assert f["bm25_doc"][sql] == 0.0 and f["log_rank_bm25"][python] == 0.0
    assert np.all(f["log_sent_tokens"] == pytest.approx(np.log(2.0)))


def test_gradient_boosted_reranker_ranks(toy_index: lk.ConceptIndex) -> None:
    rng = np.random.default_rng(lk.SEED)
    x, y, _ = lk.featurise(toy_index, lk.synthetic_esco(toy_index, 120, rng, p_hold=0.3))
    model = lk.model_dict(lk.fit_reranker(x, y, kind="hgb", max_iter=20), {}, {"residual_weight": 0.05})
    [ranked] = lk.Linker(model, toy_index).rank(["Good knowledge of MS Excel is required"], top_k=3)
    assert ranked[0][0] == "ms_excel"
    with pytest.raises(ValueError, match="unknown re-ranker"):
        lk.new_reranker(kind="forest")


ESCO_MINI = Path(__file__).resolve().parent.parent / "fixtures" / "esco_mini"


def test_esco_entries_count_occupation_and_skill_relations() -> None:
    entries = {e.label: e for e in lk.load_entries(f"esco:{ESCO_MINI}")}
    # Rows copied from ESCO v1.1.1 occupationSkillRelations.csv / skillSkillRelations.csv.
    staff = entries["manage musical staff"]
    assert (staff.n_essential, staff.n_optional) == (3, 1)
    assert (entries["SQL"].n_essential, entries["SQL"].n_optional) == (0, 4)
    assert entries["protect ICT devices"].n_essential == 1
    assert entries["manage supplies"].n_skill_relations == 1
    assert entries["supply chain management"].n_skill_relations == 1
    assert (entries["Haskell"].n_essential, entries["Haskell"].n_optional, entries["Haskell"].n_skill_relations) == (
        0, 0, 0)
    index = lk.ConceptIndex(list(entries.values()))
    [cands] = index.candidates(["Manage the musical staff"], must_include=[[index.position[staff.id]]])
    row = list(cands.concepts).index(index.position[staff.id])
    f = dict(zip(lk.FEATURES, cands.features[row], strict=True))
    assert f["log_occ_essential"] == pytest.approx(np.log1p(3))
    assert f["log_occ_optional"] == pytest.approx(np.log1p(1))


def test_gzipped_occupation_relations_are_read(tmp_path: Path) -> None:
    import gzip

    folder = _write_esco(tmp_path / "esco")
    with gzip.open(folder / "en" / "occupationSkillRelations.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("occupationUri,relationType,skillType,skillUri\n"
                     "o:dev,essential,knowledge,u:python\no:analyst,optional,knowledge,u:python\n"
                     "o:dev,optional,skill/competence,u:teams\n")
    counts = lk.esco_relation_counts(folder / "en")
    assert counts == {"u:python": (1, 1, 0), "u:teams": (0, 1, 0)}
    assert lk.esco_relation_counts(tmp_path) == {}


def test_structure_features_are_zero_outside_esco(toy_index: lk.ConceptIndex) -> None:
    [cands] = toy_index.candidates(["Python and SQL"])
    for name in lk.STRUCTURE_FEATURES:
        assert np.all(cands.features[:, lk.FEATURES.index(name)] == 0.0)


def test_lsa_similarity_follows_meaning_and_respects_hidden_labels() -> None:
    index = lk.ConceptIndex(lk.load_entries(f"esco:{ESCO_MINI}"))
    assert index.lsa_docs.shape == (len(index), min(lk.LSA_DIMS, len(index) - 1))
    sql = index.position[next(e.id for e in index.entries if e.label == "SQL")]
    staff = index.position[next(e.id for e in index.entries if e.label == "manage musical staff")]
    sentence = ["You query relational databases in SQL"]
    [cands] = index.candidates(sentence, must_include=[[sql, staff]])
    col = lk.FEATURES.index("lsa_cos")
    pos = list(cands.concepts)
    assert cands.features[pos.index(sql), col] > 0.5 > cands.features[pos.index(staff), col]
    assert cands.features[pos.index(sql), lk.FEATURES.index("log_rank_lsa_cos")] == 0.0
    # Hiding SQL's labels recomputes its latent-semantic cosine from what is left (the description).
    rows = list(range(int(index.pref_row[sql]), int(index.pref_row[sql] + index.n_labels[sql])))
    [hidden] = index.candidates(sentence, exclude_labels=[rows], must_include=[[sql]])
    sent = index._lsa_vectors(index.word_vec.transform([lk.normalise_words(sentence[0])]))[0]
    desc = index._lsa_vectors(index.word_vec.transform([" " + index.desc_words[sql]]))[0]
    visible = index._lsa_vectors(index.doc_t.T.tocsr()[sql])[0]
    assert hidden.features[list(hidden.concepts).index(sql), col] == pytest.approx(float(sent @ desc), abs=1e-5)
    assert cands.features[pos.index(sql), col] == pytest.approx(float(sent @ visible), abs=1e-5)
    assert float(sent @ desc) != pytest.approx(float(sent @ visible), abs=1e-4)


def test_model_on_a_subset_of_features_still_links(toy_index: lk.ConceptIndex) -> None:
    rng = np.random.default_rng(lk.SEED)
    x, y, _ = lk.featurise(toy_index, lk.synthetic_esco(toy_index, 120, rng, p_hold=0.3))
    cols = [lk.FEATURES.index(n) for n in lk.BASE_FEATURES]
    model = lk.model_dict(lk.fit_reranker(x[:, cols], y), {}, {"residual_weight": 0.05},
                          feature_names=lk.BASE_FEATURES)
    assert len(lk.BASE_FEATURES) == 36 and model["feature_names"] == list(lk.BASE_FEATURES)
    [ranked] = lk.Linker(model, toy_index).rank(["Good knowledge of MS Excel is required"], top_k=3)
    assert ranked[0][0] == "ms_excel"
    with pytest.raises(Exception, match="M002"):
        lk.Linker(dict(model, feature_names=[*lk.BASE_FEATURES, "lsa_cos", "lsa_cos"]), toy_index)


def test_embedding_features_follow_the_description_and_are_zero_unless_attached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extractors import embeddings as em

    monkeypatch.setenv("SKILLPULSE_CACHE_DIR", str(tmp_path / "cache"))
    index = lk.ConceptIndex(lk.load_entries(f"esco:{ESCO_MINI}"))
    sql = index.position[next(e.id for e in index.entries if e.label == "SQL")]
    staff = index.position[next(e.id for e in index.entries if e.label == "manage musical staff")]
    sentence = ["You will write queries against our relational databases"]
    cols = [lk.FEATURES.index(n) for n in lk.EMBEDDING_FEATURES]
    [plain] = index.candidates(sentence, must_include=[[sql, staff]])
    assert np.all(plain.features[:, cols] == 0.0)
    info = index.attach_embeddings()
    assert not info["cached"] and "-desc-" in info["cache"]
    [cands] = index.candidates(sentence, must_include=[[sql, staff]])
    pos = list(cands.concepts)
    f = {name: cands.features[:, c] for name, c in zip(lk.EMBEDDING_FEATURES, cols, strict=True)}
    expected = em.encode(sentence) @ em.concept_matrix(index.entries, "desc")[0].T
    assert f["emb_desc_cos"][pos.index(sql)] == pytest.approx(expected[0, sql], abs=1e-5)
    assert f["emb_desc_cos"][pos.index(sql)] > f["emb_desc_cos"][pos.index(staff)]
    assert np.all(f["gap_emb_desc_cos"] <= 1e-6) and np.all(f["log_rank_emb_desc_cos"] >= 0.0)
    best = int(np.argmax(expected[0]))
    if best in pos:
        assert f["log_rank_emb_desc_cos"][pos.index(best)] == 0.0
    # hiding SQL's labels leaves the description, so its embedding features do not change
    rows = list(range(int(index.pref_row[sql]), int(index.pref_row[sql] + index.n_labels[sql])))
    [hidden] = index.candidates(sentence, exclude_labels=[rows], must_include=[[sql, staff]])
    np.testing.assert_allclose(hidden.features[:, cols], cands.features[:, cols])
    # the other columns are those of the index without embeddings
    others = [i for i in range(len(lk.FEATURES)) if i not in cols]
    np.testing.assert_allclose(cands.features[:, others], plain.features[:, others])
