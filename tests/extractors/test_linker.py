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
