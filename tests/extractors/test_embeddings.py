"""The sentence-embedding re-ranker: the ONNX int8 all-MiniLM-L6-v2 encoder, its checks, the cache.

Everything runs on the real encoder (onnxruntime, no torch); each test takes well under a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractors import embeddings as em
from extractors import linker as lk
from extractors.errors import SettingsError, SkillpulseError, UntrustedModelError

ESCO_MINI = Path(__file__).resolve().parent.parent / "fixtures" / "esco_mini"


def test_missing_module_is_one_line_error_saying_what_to_do() -> None:
    with pytest.raises(em.EmbeddingsUnavailableError) as info:
        em.require("skillpulse_no_such_module_for_tests")
    message = str(info.value)
    assert isinstance(info.value, SkillpulseError)
    assert message.startswith("[E001]") and "pip install -e ." in message and "--rerank none" in message
    assert "skillpulse_no_such_module_for_tests" in message and "\n" not in message


def test_concept_texts_variants_and_cache_key() -> None:
    entries = lk.load_entries(f"esco:{ESCO_MINI}")
    python = next(i for i, e in enumerate(entries) if e.label == "Python (computer programming)")
    assert em.concept_texts(entries, "label")[python] == "Python (computer programming)"
    assert em.concept_texts(entries, "label_desc")[python].startswith("Python (computer programming): ")
    assert em.concept_texts(entries, "label_alts")[python].startswith("Python (computer programming); ")
    desc = em.concept_texts(entries, "desc")[python]
    assert desc and "Python (computer programming)" not in desc and desc == entries[python].description[:len(desc)]
    with pytest.raises(ValueError, match="unknown embedding variant"):
        em.concept_texts(entries, "nope")
    # The key changes with the variant and with the taxonomy's content (its version).
    keys = {em.cache_key(entries, v) for v in em.VARIANTS} | {em.cache_key(entries[:-1], "label")}
    assert len(keys) == len(em.VARIANTS) + 1
    # ... and with the encoder: int8 ONNX vectors never share a file with fp32 ones.
    assert em.cache_key(entries, "label", "all-MiniLM-L6-v2") != em.cache_key(entries, "label")
    assert em.cache_key(entries, "label").startswith("all-MiniLM-L6-v2-onnx-int8-8199be6f699a-label-")


def test_unknown_rerank_option_is_a_settings_error(tmp_path: Path) -> None:
    from flows.link import link_file

    with pytest.raises(SettingsError, match=r"\[S011\] unknown --rerank 'bert'"):
        link_file(tmp_path / "in.jsonl", tmp_path / "out.jsonl", rerank="bert")


# --------------------------------------------------------------------------- the encoder


@pytest.fixture(scope="module")
def encoder() -> em.OnnxEncoder:
    return em.load_encoder()


def test_encoder_puts_similar_texts_closer_than_unrelated_ones(encoder: em.OnnxEncoder) -> None:
    texts = ["You will write scripts and data pipelines in Python.", "Python (computer programming)",
             "We offer free coffee and a friendly team.", "Experience with SQL databases and queries",
             "database query languages"]
    v = em.encode(texts, encoder)
    assert v.shape == (5, em.DIM) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.4 > sims[0, 2] and sims[3, 4] > 0.4 > sims[3, 2]
    assert sims[0, 1] > sims[0, 4] and sims[3, 4] > sims[3, 1]


def test_encoder_batches_give_the_one_by_one_vectors(encoder: em.OnnxEncoder) -> None:
    texts = ["SQL", "manage a team of nurses on a busy hospital ward, with night shifts and weekend cover",
             "Kenntnisse in Excel", "teamwork", "Знання SQL та Excel", "cloud computing (AWS, Azure)"]
    batched = em.encode(texts, encoder, batch_size=4)
    alone = np.vstack([em.encode([t], encoder) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert em.encode([], encoder).shape == (0, em.DIM)


def test_encoder_truncates_long_texts_to_256_tokens(encoder: em.OnnxEncoder) -> None:
    long = "python " * 400
    assert len(encoder.tokenizer.encode(long).ids) == em.MAX_SEQ_LENGTH
    np.testing.assert_allclose(em.encode([long], encoder), em.encode([long + "free coffee " * 50], encoder),
                               atol=1e-6)


def test_encoder_refuses_a_model_file_with_another_sha256(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(UntrustedModelError, match=r"\[E003\] the embedding model .*model\.onnx has sha256 "
                                                  r"[0-9a-f]{64}, not the pinned 8199be6f") as info:
        em.OnnxEncoder(fake)
    assert "refusing to run it" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UntrustedModelError, match=r"\[E002\] the embedding model .*missing"):
        em.OnnxEncoder(tmp_path / "nowhere.onnx")
    # The real file, against a pin it does not have.
    with pytest.raises(UntrustedModelError, match="E003"):
        em.OnnxEncoder(model_sha256="0" * 64)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKILLPULSE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "embeddings"


@pytest.fixture(scope="module")
def mini_linker() -> lk.Linker:
    return lk.Linker(None, lk.ConceptIndex(lk.load_entries(f"esco:{ESCO_MINI}")))


def test_sentence_about_a_concept_ranks_it_first(encoder, cache: Path, mini_linker: lk.Linker) -> None:  # type: ignore[no-untyped-def]
    reranker = em.EmbeddingReranker(mini_linker, encoder=encoder)
    ranked = reranker.rank(["You will write scripts and data pipelines in Python.",
                            "Experience with the rubber industry: curing tyres with heat"], top_k=3)
    assert ranked[0][0][1] == "Python (computer programming)"
    assert ranked[1][0][1] in {"hot vulcanisation", "cold vulcanisation"}
    assert [s for _, _, s in ranked[0]] == sorted((s for _, _, s in ranked[0]), reverse=True)
    # The embeddings alone (weight 1 on the cosine, linker scores kept) move a paraphrase up.
    scored = reranker.scored(["teach the others in the group and guide them"])[0]
    cos_best = scored.concepts[int(np.argmax(scored.cosine))]
    assert mini_linker.index.entries[cos_best].label in {"lead others", "manage staff"}


def test_concept_matrix_is_cached_and_reused(encoder, cache: Path) -> None:  # type: ignore[no-untyped-def]
    entries = lk.load_entries(f"esco:{ESCO_MINI}")
    first, info1 = em.concept_matrix(entries, "label", encoder)
    assert not info1["cached"] and Path(info1["cache"]).is_file() and Path(info1["cache"]).parent == cache
    second, info2 = em.concept_matrix(entries, "label", encoder)
    assert info2["cached"] and info2["cache"] == info1["cache"]
    np.testing.assert_array_equal(first, second)
    assert first.shape == (len(entries), 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-4)
    _, info3 = em.concept_matrix(entries, "label_desc", encoder)
    assert not info3["cached"] and info3["cache"] != info1["cache"]


def test_added_candidates_are_the_nearest_concepts_by_cosine(encoder, cache: Path, mini_linker: lk.Linker,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lk, "N_PER_SCORE", 2)  # few retrieval candidates out of the 25 concepts
    sentence = ["teach the others in the group and guide them"]
    alone = em.EmbeddingReranker(mini_linker, encoder=encoder)  # the shipped setting: no added candidates
    plus = em.EmbeddingReranker(mini_linker, encoder=encoder, n_embed=5)
    assert alone.n_embed == em.N_EMBED == 0 and alone.weight == em.DEFAULT_WEIGHT
    base, more = alone.scored(sentence)[0], plus.scored(sentence)[0]
    sims = em.encode(sentence, encoder) @ plus.concepts.T
    nearest = set(np.argsort(-sims[0])[:5].tolist())
    assert len(base.concepts) <= 8 and not nearest <= set(base.concepts.tolist())
    assert nearest <= set(more.concepts.tolist())
    assert set(base.concepts.tolist()) <= set(more.concepts.tolist())
    # the linker's own candidates keep their linker scores when others are added
    shared = {int(c): s for c, s in zip(more.concepts, more.linker, strict=True)}
    assert all(abs(shared[int(c)] - s) < 1e-9 for c, s in zip(base.concepts, base.linker, strict=True))


def test_embedding_setting_names_parse_and_bad_ones_are_settings_errors() -> None:
    from flows.evaluate import parse_embedding_setting

    assert parse_embedding_setting("label_desc+20") == ("label_desc", 20)
    assert parse_embedding_setting("label") == ("label", None)
    assert parse_embedding_setting(None) == (None, None)
    with pytest.raises(SettingsError, match=r"\[S012\].*'label\+x'"):
        parse_embedding_setting("label+x")


def test_concept_matrix_reports_progress_and_gives_the_same_vectors(  # type: ignore[no-untyped-def]
        encoder, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = lk.load_entries(f"esco:{ESCO_MINI}")
    texts = em.concept_texts(entries, "label_desc")
    n = len(texts)
    monkeypatch.setattr(em, "PROGRESS_EVERY", 2)  # 25 texts in batches of 4: every 8 texts, then the end
    calls: list[tuple[int, int]] = []
    small = em.encode(texts, encoder, batch_size=4, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(8, n), (16, n), (24, n), (n, n)]
    np.testing.assert_array_equal(small, em.encode(texts, encoder, batch_size=4))  # reporting changes nothing
    calls.clear()
    matrix, info = em.concept_matrix(entries, "label_desc", encoder, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(n, n)] and not info["cached"]  # one batch of 64
    np.testing.assert_array_equal(matrix, em.encode(texts, encoder))
    calls.clear()
    em.concept_matrix(entries, "label_desc", encoder, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == []  # read from the cache: nothing to report


def test_more_threads_give_the_same_vectors(encoder) -> None:  # type: ignore[no-untyped-def]
    texts = em.concept_texts(lk.load_entries(f"esco:{ESCO_MINI}"), "label_desc")
    two = encoder.with_threads(2)
    assert two.threads == 2 and encoder.threads == em.DEFAULT_THREADS == 1 and encoder.with_threads(1) is encoder
    assert two.model_path == encoder.model_path and two.id == encoder.id
    np.testing.assert_array_equal(em.encode(texts, two), em.encode(texts, encoder))
