"""The competence classifier: reproducible training, safe loading, implicit mentions, and the pipeline."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import skops.io as sio
from sklearn.tree import DecisionTreeClassifier

from extractors.classifier import (
    MODEL_PATH,
    SPAN_KEY,
    TRAIN_CONFIG,
    CompetenceClassifier,
    fit_model,
    load_classifier,
)
from extractors.errors import UntrustedModelError
from extractors.mentions import COMPETENCE_CONCEPT_PREFIX, METHOD_CLASSIFIER, MODEL_VERSION, extract_mentions
from extractors.nlp import get_nlp
from extractors.persistence import load_model, save_model
from taxonomy.load import load_taxonomy

LABELS = ["digcomp:1.3", "ecf:B.1", "ecf:B.3", "ecf:D.6"]
TOY = [
    ("keep spreadsheet of stock", ("digcomp:1.3",)),
    ("update table of client data", ("digcomp:1.3",)),
    ("develop new feature for web app", ("ecf:B.1",)),
    ("develop backend service", ("ecf:B.1",)),
    ("write test case and report bug", ("ecf:B.3",)),
    ("run regression test before release", ("ecf:B.3",)),
    ("run social media page of the brand", ("ecf:D.6",)),
    ("post on social network and grow follower", ("ecf:D.6",)),
    ("friendly team and free coffee", ()),
    ("office in the city centre", ()),
] * 3


def _fit(seed: int) -> dict:
    config = {**TRAIN_CONFIG, "seed": seed, "min_df": 1, "calibration_share": 0.3}
    texts = [t for t, _ in TOY]
    targets = [c for _, c in TOY]
    kinds = ["silver"] * len(TOY)
    model, _ = fit_model(texts, targets, kinds, LABELS, config)
    return model


def test_same_seed_same_model_and_predictions(tmp_path: Path) -> None:
    probe = ["develop a new web feature", "report a bug found in a test", "update the stock spreadsheet"]
    first, second = _fit(7), _fit(7)
    save_model(first, tmp_path / "a.skops")
    save_model(second, tmp_path / "b.skops")
    a = CompetenceClassifier(load_model(tmp_path / "a.skops")).predict_proba(probe)
    b = CompetenceClassifier(load_model(tmp_path / "b.skops")).predict_proba(probe)
    assert (a == b).all()
    # and it learned something: each probe's best competence is the one its words belong to
    assert [LABELS[j] for j in a.argmax(axis=1)] == ["ecf:B.1", "ecf:B.3", "digcomp:1.3"]


def test_load_refuses_untrusted_and_tampered_files(tmp_path: Path) -> None:
    evil = tmp_path / "evil.skops"
    sio.dump({"format": "skillpulse-competence-classifier", "tree": DecisionTreeClassifier()}, evil)
    with pytest.raises(UntrustedModelError, match=r"\[M001\].*DecisionTreeClassifier"):
        load_classifier(str(evil))
    # the shipped model with one node's type rewritten to os.system
    tampered = tmp_path / "tampered.skops"
    shutil.copy(MODEL_PATH, tampered)
    with zipfile.ZipFile(MODEL_PATH) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["content"]["format"] = {"__class__": "system", "__module__": "os", "__loader__": "ObjectNode",
                                               "content": {}}
                data = json.dumps(schema).encode()
            dst.writestr(item, data)
    with pytest.raises(UntrustedModelError, match=r"os\.system"):
        load_classifier(str(tampered))
    not_skops = tmp_path / "plain.skops"
    not_skops.write_bytes(b"not a zip")
    with pytest.raises(UntrustedModelError, match=r"\[M003\]"):
        load_classifier(str(not_skops))


# Implicit demands written for this test: no taxonomy label in them.
IMPLICIT = [
    ("en", "Answer customer messages in the online chat.", "digcomp:2.1"),
    ("ru", "Тестирование новых версий приложения и поиск ошибок.", "ecf:B.3"),
    ("uk", "Ведення сторінок компанії в соціальних мережах та створення публікацій.", "ecf:D.6"),
    ("ro", "Dezvoltarea de funcționalități noi pentru platforma web a companiei.", "ecf:B.1"),
]


@pytest.mark.parametrize(("lang", "sentence", "competence"), IMPLICIT)
def test_implicit_sentences_get_the_expected_competence(lang: str, sentence: str, competence: str) -> None:
    taxonomy = load_taxonomy("builtin")
    nlp = get_nlp(lang, "builtin", taxonomy.version)
    doc = nlp(sentence)
    assert not [s for s in doc.spans["skills"] if competence in taxonomy.concepts[s.label_].competences]
    found = {span.label_: score for span, score in zip(doc.spans[SPAN_KEY], doc.spans[SPAN_KEY].attrs["scores"],
                                                       strict=True)}
    assert competence in found, found
    assert 0.0 < found[competence] <= 1.0


def test_pipeline_writes_classifier_mention_rows() -> None:
    taxonomy = load_taxonomy("builtin")
    text = ("Senior developer wanted.\nExperience with Python and PostgreSQL.\n"
            "Answer customer messages in the online chat.")
    rows = list(extract_mentions([("p1", text, "en")], taxonomy, "builtin"))
    threshold = get_nlp("en", "builtin", taxonomy.version).get_pipe("competence_classifier").threshold
    assert 0.3 <= threshold <= 0.7
    methods = {r["method"] for r in rows}
    assert methods == {"matcher", METHOD_CLASSIFIER}
    clf = [r for r in rows if r["method"] == METHOD_CLASSIFIER]
    assert any(r["competence_id"] == "digcomp:2.1" and r["sentence_index"] == 2 for r in clf)
    for r in clf:
        assert r["concept_id"] == COMPETENCE_CONCEPT_PREFIX + r["competence_id"]
        assert text[r["start_char"]:r["end_char"]] == r["surface"] == r["sentence"]
        assert r["concept_label"] == taxonomy.competences[r["competence_id"]].label
        assert threshold <= r["score"] <= 1.0
    # a competence the matcher gave for a sentence is never repeated by the classifier there
    given = {(r["sentence_index"], r["competence_id"]) for r in rows if r["method"] == "matcher"}
    assert not [r for r in clf if (r["sentence_index"], r["competence_id"]) in given]
    assert MODEL_VERSION.startswith("matcher-1+clf-") and len(MODEL_VERSION) == len("matcher-1+clf-") + 8


def test_batch_features_from_tokens_equal_the_text_features() -> None:
    from extractors.classifier import norm_sentences

    taxonomy = load_taxonomy("builtin")
    texts = {"ru": ["Требования:\n- опыт работы с Excel;\n- ведение отчётности в таблицах.", ""],
             "uk": ["Обов'язки:  ведення сторінок компанії в соцмережах.\n\nЗнання 1С."]}
    for lang, batch in texts.items():
        nlp = get_nlp(lang, "builtin", taxonomy.version)
        clf = nlp.get_pipe("competence_classifier").classifier
        with nlp.select_pipes(disable=["competence_classifier"]):
            docs = list(nlp.pipe(batch))
        x, bounds = clf.doc_features(docs)
        sentences = [s for doc in docs for s in norm_sentences(doc)]
        assert [b for per_doc in bounds for b in per_doc] == [(s, e) for s, e, _ in sentences]
        expected = clf.predict_proba([t for _, _, t in sentences])
        assert abs(clf.proba_from_features(x) - expected).max() < 1e-5


def test_headings_are_not_classified() -> None:
    taxonomy = load_taxonomy("builtin")
    nlp = get_nlp("ru", "builtin", taxonomy.version)
    doc = nlp("Требования:\nТестирование новых версий приложения и поиск ошибок.")
    spans = list(doc.spans[SPAN_KEY])
    assert spans and all(span.start > 1 for span in spans)  # only the second sentence
