"""`skillpulse link`: rank taxonomy concepts for each text of a JSON Lines file.

Each input line ``{"id": ..., "text": ...}`` gives one output line
``{"id": ..., "candidates": [{"concept_id", "label", "score"}, ...]}``, best first.
Lines that are not JSON objects, or have no id or no non-empty text, are skipped and
reported with their line numbers; they never stop the run.

With ``rerank="embeddings"`` (``DEFAULT_RERANK``) the linker's candidates are re-scored with
sentence embeddings (``extractors.embeddings``: all-MiniLM-L6-v2, int8 ONNX on onnxruntime);
``rerank="none"`` is the linker alone (faster; no concept vectors to compute).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from extractors import linker as lk
from extractors.errors import OutputError, SettingsError, SourceError, UntrustedModelError

DEFAULT_MODEL = Path(lk.__file__).parent / "data" / "linker.skops"
UNTRAINED = "none"  # model_path value for untrained TF-IDF retrieval
MAX_REPORTED = 50
BATCH = 256
RERANKERS = ("none", "embeddings")
DEFAULT_RERANK = "embeddings"  # chosen on the annotated dev set (extractors.embeddings)


def card_path(model_path: str | Path) -> Path:
    """The model card JSON next to a model file: ``X.skops`` → ``X.card.json``."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".skops") + ".card.json")


def load_model(model_path: str | Path | None = None) -> dict[str, Any] | None:
    """The linker model at `model_path` (None: the default model; "none": untrained)."""
    from extractors.persistence import load_model as load_skops

    if model_path is not None and str(model_path) == UNTRAINED:
        return None
    path = Path(model_path) if model_path is not None else DEFAULT_MODEL
    if model_path is None and not path.is_file():
        raise UntrustedModelError(f"[M003] the default model {path} is missing: run 'skillpulse train'")
    model = load_skops(path)
    if not isinstance(model, dict) or model.get("format") != lk.MODEL_FORMAT:
        raise UntrustedModelError(f"[M002] {path} is not a skillpulse linker model")
    return model


def read_texts(path: Path) -> tuple[list[tuple[Any, str]], list[dict[str, Any]], int]:
    """Good (id, text) records, bad lines (line number and reason) and lines read."""
    good: list[tuple[Any, str]] = []
    bad: list[dict[str, Any]] = []
    read = 0
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise SourceError(f"[S001] input file {path} not found") from None
    except IsADirectoryError:
        raise SourceError(f"[S001] input {path} is a folder, not a JSON Lines file") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            read += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append({"line": number, "reason": f"not JSON ({exc.msg})"})
                continue
            if not isinstance(record, dict):
                bad.append({"line": number, "reason": "not a JSON object"})
            elif record.get("id") is None:
                bad.append({"line": number, "reason": "no id"})
            elif not isinstance(record.get("text"), str) or not record["text"].strip():
                bad.append({"line": number, "reason": "no text"})
            else:
                good.append((record["id"], record["text"]))
    return good, bad, read


def link_file(input_jsonl: str | Path, output_jsonl: str | Path, taxonomy_spec: str = "builtin",
              top_k: int = 10, model_path: str | Path | None = None, rerank: str = DEFAULT_RERANK
              ) -> dict[str, Any]:
    """Link every text of `input_jsonl` and write the ranked candidates to `output_jsonl`.

    `model_path`: None for the default model, a skops file, or "none" for untrained
    TF-IDF retrieval. `rerank`: "embeddings" re-scores the candidates with sentence
    embeddings (``extractors.embeddings``), "none" keeps the linker's ranking.
    Returns counts (read, linked, bad), the bad lines (at most 50), timings (the linker's
    index, the concept embeddings: computed or read from the cache, linking) and the model
    and taxonomy used. The output is written to a temporary file and renamed, so it is
    complete or absent.
    """
    if top_k < 1:
        raise SourceError(f"[S002] --top-k must be at least 1, not {top_k}")
    if rerank not in RERANKERS:
        raise SettingsError(f"[S011] unknown --rerank {rerank!r}: use one of {', '.join(RERANKERS)}")
    inp, out = Path(input_jsonl), Path(output_jsonl)
    records, bad, read = read_texts(inp)
    model = load_model(model_path)
    t0 = time.perf_counter()
    linker: Any = lk.Linker.build(model, taxonomy_spec)
    build_s = time.perf_counter() - t0
    embedding: dict[str, Any] | None = None
    if rerank == "embeddings":
        from extractors.embeddings import EmbeddingReranker
        from flows.progress import report

        def progress(done: int, total: int) -> None:
            report("link", f"embedding the concepts once for this taxonomy (then cached): {done:,} of {total:,}")

        t_emb = time.perf_counter()
        linker = EmbeddingReranker(linker, on_progress=progress)
        embedding = {"variant": linker.variant, "weight": linker.weight, "cached": linker.build_info["cached"],
                     "seconds": round(time.perf_counter() - t_emb, 2)}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    t1 = time.perf_counter()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as handle:
            for start in range(0, len(records), BATCH):
                batch = records[start:start + BATCH]
                ranked = linker.rank([text for _, text in batch], top_k=top_k)
                for (rid, _), cands in zip(batch, ranked, strict=True):
                    row = {"id": rid, "candidates": [
                        {"concept_id": cid, "label": label, "score": score} for cid, label, score in cands]}
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(out)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OutputError(f"[O001] cannot write {out}: {exc.strerror or exc}") from None
    link_s = time.perf_counter() - t1
    return {
        "read": read,
        "linked": len(records),
        "bad": len(bad),
        "bad_lines": bad[:MAX_REPORTED],
        "output": str(out),
        "model": UNTRAINED if model is None else str(model_path or DEFAULT_MODEL),
        "taxonomy": taxonomy_spec,
        "rerank": rerank,
        "concepts": len(linker.index),
        "index_seconds": round(build_s, 2),
        "embedding": embedding,
        "link_seconds": round(link_s, 2),
        "texts_per_second": round(len(records) / link_s, 1) if link_s > 0 and records else None,
    }
