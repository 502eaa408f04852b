from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from extractors import linker as lk
from extractors.errors import OutputError, SourceError, UntrustedModelError
from extractors.persistence import save_model
from flows import evaluate as ev
from flows.link import DEFAULT_MODEL, card_path, link_file, load_model


@pytest.fixture(autouse=True)
def embedding_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Concept embeddings are cached here, not in the user's cache."""
    monkeypatch.setenv("SKILLPULSE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "embeddings"


@pytest.fixture(scope="module")
def toy_model_file(toy_taxonomy, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    index = lk.ConceptIndex(lk.taxonomy_entries(toy_taxonomy))
    data = lk.synthetic_esco(index, 80, np.random.default_rng(0), p_hold=0.3)
    x, y, _ = lk.featurise(index, data)
    model = lk.model_dict(lk.fit_reranker(x, y), {}, {"seed": 0})
    return save_model(model, tmp_path_factory.mktemp("model") / "toy.skops")


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_link_file_writes_ranked_candidates_and_reports_bad_lines(
        tmp_path: Path, toy_taxonomy_dir: Path, toy_model_file: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", [
        json.dumps({"id": "a", "text": "Experience with Python 3 and SQL"}),
        "{not json",
        json.dumps({"id": "b"}),
        "",
        json.dumps({"id": 7, "text": "MS Excel and e-mail"}),
        json.dumps(["a list"]),
        json.dumps({"text": "no id"}),
        json.dumps({"id": "c", "text": "   "}),
    ])
    out = tmp_path / "sub" / "out.jsonl"
    stats = link_file(inp, out, str(toy_taxonomy_dir), top_k=3, model_path=toy_model_file)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a", 7]
    assert all(len(r["candidates"]) == 3 for r in rows)
    assert set(rows[0]["candidates"][0]) == {"concept_id", "label", "score"}
    assert {c["concept_id"] for c in rows[0]["candidates"][:2]} == {"python", "sql"}
    assert rows[1]["candidates"][0]["concept_id"] in {"ms_excel", "email"}
    for row in rows:
        scores = [c["score"] for c in row["candidates"]]
        assert scores == sorted(scores, reverse=True)
    assert (stats["read"], stats["linked"], stats["bad"]) == (7, 2, 5)
    assert [(b["line"], b["reason"]) for b in stats["bad_lines"]] == [
        (2, "not JSON (Expecting property name enclosed in double quotes)"), (3, "no text"),
        (6, "not a JSON object"), (7, "no id"), (8, "no text")]


def test_link_file_re_ranks_with_embeddings(
        tmp_path: Path, toy_taxonomy_dir: Path, toy_model_file: Path, embedding_cache: Path) -> None:
    from extractors import embeddings as em

    inp = _write(tmp_path / "in.jsonl", [json.dumps({"id": 1, "text": "You will build and tune our database queries"}),
                                         json.dumps({"id": 2, "text": "Writing scripts in Python 3"})])
    first = link_file(inp, tmp_path / "out.jsonl", str(toy_taxonomy_dir), top_k=3, model_path=toy_model_file,
                      rerank="embeddings")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert first["rerank"] == "embeddings" and first["linked"] == 2
    assert first["embedding"]["variant"] == em.DEFAULT_VARIANT and first["embedding"]["cached"] is False
    assert rows[0]["candidates"][0]["concept_id"] == "sql" and rows[1]["candidates"][0]["concept_id"] == "python"
    cached = sorted(p.name for p in embedding_cache.iterdir())
    assert all(name.startswith(f"{em.ENCODER_ID}-") for name in cached)
    assert any(f"-{em.DEFAULT_VARIANT}-" in name for name in cached)
    # The second run reads the concept matrix from the cache and writes the same ranking.
    second = link_file(inp, tmp_path / "again.jsonl", str(toy_taxonomy_dir), top_k=3, model_path=toy_model_file,
                       rerank="embeddings")
    assert second["embedding"]["cached"] is True
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "out.jsonl").read_bytes()
    # --rerank none: the linker alone, other scores (no cosine term), no embeddings.
    alone = link_file(inp, tmp_path / "alone.jsonl", str(toy_taxonomy_dir), top_k=3, model_path=toy_model_file,
                      rerank="none")
    none_rows = [json.loads(line) for line in (tmp_path / "alone.jsonl").read_text(encoding="utf-8").splitlines()]
    assert alone["embedding"] is None and alone["rerank"] == "none"
    assert none_rows[0]["candidates"][0]["score"] < rows[0]["candidates"][0]["score"]


def test_default_rerank_is_the_embedding_setting_chosen_on_dev() -> None:
    import inspect

    from extractors import embeddings as em
    from flows import cli
    from flows.link import DEFAULT_RERANK

    assert DEFAULT_RERANK == "embeddings"
    assert inspect.signature(cli.link).parameters["rerank"].default == DEFAULT_RERANK
    assert inspect.signature(link_file).parameters["rerank"].default == DEFAULT_RERANK
    # the rule's choice on the annotated dev set: label_desc, no added candidates, w 1
    assert (em.DEFAULT_VARIANT, em.N_EMBED, em.DEFAULT_WEIGHT) == ("label_desc", 0, 1.0)
    assert inspect.signature(cli.evaluate).parameters["embeddings"].default is True


def test_link_file_untrained(tmp_path: Path, toy_taxonomy_dir: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", [json.dumps({"id": 1, "text": "structured query language"})])
    stats = link_file(inp, tmp_path / "out.jsonl", str(toy_taxonomy_dir), top_k=1, model_path="none")
    row = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))
    assert row["candidates"][0]["concept_id"] == "sql" and stats["model"] == "none"


def test_link_file_user_errors(tmp_path: Path, toy_taxonomy_dir: Path) -> None:
    with pytest.raises(SourceError, match="S001"):
        link_file(tmp_path / "missing.jsonl", tmp_path / "o.jsonl", str(toy_taxonomy_dir), model_path="none")
    inp = _write(tmp_path / "in.jsonl", [json.dumps({"id": 1, "text": "SQL"})])
    with pytest.raises(SourceError, match="S002"):
        link_file(inp, tmp_path / "o.jsonl", str(toy_taxonomy_dir), top_k=0, model_path="none")
    blocker = _write(tmp_path / "file", ["x"])
    with pytest.raises(OutputError, match="O001"):
        link_file(inp, blocker / "o.jsonl", str(toy_taxonomy_dir), model_path="none")
    with pytest.raises(UntrustedModelError, match="M003"):
        load_model(tmp_path / "nope.skops")


def test_default_model_loads_and_has_a_card() -> None:
    if not DEFAULT_MODEL.is_file():
        pytest.skip("no default model shipped")
    model = load_model(None)
    assert model is not None and set(model["feature_names"]) <= set(lk.FEATURES)
    card = json.loads(card_path(DEFAULT_MODEL).read_text(encoding="utf-8"))
    assert card["features"] == model["feature_names"]
    assert card["sha256"] == ev.sha256(DEFAULT_MODEL)
    assert DEFAULT_MODEL.stat().st_size < 20_000_000


def test_metrics() -> None:
    gold = {"a", "b", "c"}
    assert ev.rp_at_k(gold, ["a", "x", "b"], 1) == 1.0
    assert ev.rp_at_k(gold, ["x", "a", "b", "y", "z"], 5) == pytest.approx(2 / 3)
    assert ev.reciprocal_rank({"b"}, ["x", "b"]) == 0.5
    assert ev.reciprocal_rank({"b"}, ["x"]) == 0.0
    metrics = ev.score_rankings([{"a"}, {"b"}], [["a"], ["x", "b"]])
    assert metrics["RP@1"] == 50.0 and metrics["MRR"] == 75.0 and metrics["sentences"] == 2


def test_readers(tmp_path: Path) -> None:
    bench = tmp_path / "b.csv"
    bench.write_text("sentence,span,sub_span,label\nS one,x,,Java\nS one,y,,LABEL NOT PRESENT\n"
                     "S two,z,,UNDERSPECIFIED\nS one,x,,Java\n", encoding="utf-8")
    assert ev.read_benchmark(bench) == [("S one", {"Java"})]
    conll = tmp_path / "c.conll"
    conll.write_text("Know\tO\tO\nJava\tO\tB\nand\tO\tO\nteam\tB\tO\nwork\tI\tO\n\nHi\tO\tO\n", encoding="utf-8")
    assert ev.read_conll(conll) == [("Know Java and team work", ["team work", "Java"]), ("Hi", [])]


def test_esco_data_matches_the_benchmark_label_space(shared_dir: Path) -> None:
    entries = lk.load_entries(f"esco:{shared_dir / ev.ESCO_DIR}")
    assert len(entries) == 13896
    labels = {e.label for e in entries}
    for subset in ev.SUBSETS:
        data = ev.read_benchmark(shared_dir / ev.BENCH_DIR / f"{subset}_validation_annotations.csv")
        assert data and all(g <= labels for _, g in data)


def test_candidate_rule_needs_a_margin_to_prefer_a_later_candidate() -> None:
    assert ev.choose_candidate({"C0": 80.0, "C1": 80.4, "C2": 80.9, "C3": 80.6}) == "C2"
    assert ev.choose_candidate({"C0": 80.0, "C1": 80.5, "C2": 79.0}) == "C0"
    assert ev.choose_candidate({"C0": 80.0, "C1": 81.0, "C2": 81.4, "C3": 81.6}) == "C3"
    assert list(ev.LINKER_CANDIDATES) == ["C0", "C1", "C2", "C3", "C4"]
    assert ev.LINKER_CANDIDATES["C0"]["features"] == list(lk.BASE_FEATURES)
    assert ev.LINKER_CANDIDATES["C3"]["features"] == list(lk.S3_FEATURES)
    assert ev.LINKER_CANDIDATES["C4"]["features"] == list(lk.S3_FEATURES + lk.EMBEDDING_FEATURES)


def test_embedding_rule_picks_best_mean_rp5_then_mrr_and_needs_a_margin_over_the_linker() -> None:
    means = {"none": {"RP@5": 80.0, "MRR": 70.0}, "label@0": {"RP@5": 80.2, "MRR": 71.0},
             "label@0.5": {"RP@5": 81.0, "MRR": 70.0}, "label_desc@0.5": {"RP@5": 81.0, "MRR": 72.0},
             "label_alts@1": {"RP@5": 90.0, "MRR": 90.0}}
    eligible = ["label@0", "label@0.5", "label_desc@0.5"]
    assert ev.choose_embedding_setting(means, eligible) == "label_desc@0.5"  # tie on RP@5, MRR decides
    assert ev.choose_embedding_setting(means, ["label@0"]) == "none"  # +0.2 is not more than 0.5
    assert "label_alts" in ev.EMBEDDING_REPORTED_ONLY and "label_alts" not in ev.EMBEDDING_VARIANTS
