from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from extractors import linker as lk
from extractors.errors import UntrustedModelError
from extractors.persistence import TRUSTED_TYPES, file_types, load_model, save_model


@pytest.fixture(scope="module")
def model() -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, len(lk.FEATURES)))
    y = (x[:, 0] > 0).astype(int)
    return lk.model_dict(lk.fit_reranker(x, y), {"u:a": 2.0, "u:b": 1.0}, {"seed": 0, "C": 1.0, "note": "x"})


def _rewrite_schema(src: Path, dst: Path, edit) -> None:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                data = json.dumps(edit(json.loads(data))).encode("utf-8")
            zout.writestr(item, data)


def test_fresh_dump_uses_only_reviewed_types(model: dict, tmp_path: Path) -> None:
    path = save_model(model, tmp_path / "m.skops")
    assert set(sio.get_untrusted_types(file=path)) <= set(TRUSTED_TYPES)
    assert file_types(path) <= set(TRUSTED_TYPES)


def test_round_trip_predicts_the_same(model: dict, tmp_path: Path) -> None:
    path = save_model(model, tmp_path / "m.skops")
    loaded = load_model(path)
    x = np.random.default_rng(1).normal(size=(5, len(lk.FEATURES)))
    np.testing.assert_allclose(loaded["reranker"].predict_proba(x), model["reranker"].predict_proba(x))
    assert loaded["prior_ids"] == ["u:a", "u:b"] and loaded["feature_names"] == list(lk.FEATURES)


def test_tampered_file_with_an_added_type_is_refused(model: dict, tmp_path: Path) -> None:
    good = save_model(model, tmp_path / "m.skops")

    def add_type(schema: dict) -> dict:
        # a default-trusted scikit-learn type that is not on our list, and a function
        schema["content"]["extra"] = {
            "__class__": "RandomForestClassifier", "__module__": "sklearn.ensemble._forest",
            "__loader__": "ObjectNode", "content": {}, "__id__": 999}
        schema["content"]["call"] = {
            "__class__": "system", "__module__": "os", "__loader__": "TypeNode", "content": {}, "__id__": 998}
        return schema

    bad = tmp_path / "tampered.skops"
    _rewrite_schema(good, bad, add_type)
    with pytest.raises(UntrustedModelError, match=r"\[M001\] .*contains unreviewed types: \[") as info:
        load_model(bad)
    assert "sklearn.ensemble._forest.RandomForestClassifier" in str(info.value)
    assert "os.system" in str(info.value)


def test_not_a_model_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(UntrustedModelError, match="M003"):
        load_model(junk)
    with pytest.raises(UntrustedModelError, match="M003"):
        load_model(tmp_path / "missing.skops")


def test_saving_refuses_unreviewed_types(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    with pytest.raises(UntrustedModelError, match="M001"):
        save_model({"m": DecisionTreeClassifier().fit([[0], [1]], [0, 1])}, tmp_path / "t.skops")
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def hgb_model() -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(lk.FEATURES)))
    y = (x[:, 0] + 0.5 * x[:, 3] > 0).astype(int)
    reranker = lk.fit_reranker(x, y, kind="hgb", max_iter=15)
    return lk.model_dict(reranker, {"u:a": 2.0}, {"seed": 0, "reranker": "hgb"})


def test_gradient_boosted_reranker_loads_through_the_allowlist(hgb_model: dict, tmp_path: Path) -> None:
    path = save_model(hgb_model, tmp_path / "hgb.skops")
    assert file_types(path) <= set(TRUSTED_TYPES)
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in file_types(path)
    assert "numpy.random._generator.Generator" not in file_types(path)  # training-only state dropped
    loaded = load_model(path)
    x = np.random.default_rng(2).normal(size=(7, len(lk.FEATURES)))
    np.testing.assert_allclose(loaded["reranker"].decision_function(x), hgb_model["reranker"].decision_function(x))
    assert loaded["reranker"].n_iter_ == 15


def test_gradient_boosted_file_with_a_foreign_type_is_refused(hgb_model: dict, tmp_path: Path) -> None:
    good = save_model(hgb_model, tmp_path / "hgb.skops")

    def swap_tree_type(schema: dict) -> dict:
        # the trees are declared as a default-trusted scikit-learn type that we never reviewed
        def walk(node):  # type: ignore[no-untyped-def]
            if isinstance(node, dict):
                if node.get("__class__") == "TreePredictor":
                    node["__class__"], node["__module__"] = "ExtraTreeClassifier", "sklearn.tree._classes"
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
        walk(schema)
        return schema

    bad = tmp_path / "foreign.skops"
    _rewrite_schema(good, bad, swap_tree_type)
    with pytest.raises(UntrustedModelError, match=r"\[M001\].*sklearn\.tree\._classes\.ExtraTreeClassifier"):
        load_model(bad)
