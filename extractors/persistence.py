"""Save and load linker models with skops — never pickle or joblib.

A skops file is a zip with a ``schema.json`` that names the type of every object in
it. ``load_model`` reads that schema first and refuses a file that names any type
outside ``TRUSTED_TYPES``, the reviewed allowlist below, with
``UntrustedModelError`` ("[M001] ... contains unreviewed types: [...]"). Only then is
the file loaded, with skops trusting exactly those types.

Review rule for a new entry: a built-in scikit-learn estimator or transformer, a numpy
array or scalar type, or a plain Python container — never a function, a lambda or a
class of ours (they would make loading run code from the file's say-so).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from extractors.errors import UntrustedModelError

TRUSTED_TYPES: tuple[str, ...] = (
    # plain containers and scalars (skops JSON nodes)
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.str",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.NoneType",
    # numpy arrays, dtypes and scalars
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.float64",
    "numpy.float32",
    "numpy.int64",
    "numpy.int32",
    "numpy.int8",
    # the re-ranker
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.linear_model._logistic.LogisticRegression",
    # the gradient-boosted re-ranker (HistGradientBoostingClassifier and the parts it holds;
    # its training-only random generator is dropped before saving)
    "numpy.uint64",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn.preprocessing._label.LabelEncoder",
)


def save_model(model: Any, path: str | Path) -> Path:
    """Write `model` to `path` with skops (zip, deflated) and check it loads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    unreviewed = unreviewed_types(tmp)
    if unreviewed:
        tmp.unlink()
        raise UntrustedModelError(
            f"[M001] refusing to save {path}: the model contains unreviewed types: {unreviewed}"
        )
    tmp.replace(path)
    return path


def file_types(path: str | Path) -> set[str]:
    """Every ``module.Class`` named in a skops file's schema."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UntrustedModelError(f"[M003] {path} is not a skops model file ({exc})") from None
    found: set[str] = set()
    _walk(schema, found)
    return found


def _walk(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if "__class__" in node:
            found.add(f"{node.get('__module__', '')}.{node['__class__']}")
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)


def unreviewed_types(path: str | Path) -> list[str]:
    """Types in the file outside TRUSTED_TYPES (from the schema and from skops itself)."""
    path = Path(path)
    named = file_types(path)
    outside = sorted(t for t in named if t not in TRUSTED_TYPES)
    if outside:
        return outside
    try:
        named.update(sio.get_untrusted_types(file=path))
    except Exception as exc:  # a schema skops cannot audit is no model of ours
        raise UntrustedModelError(f"[M003] {path} is not a valid skops model file ({exc!r})") from None
    return sorted(t for t in named if t not in TRUSTED_TYPES)


def load_model(path: str | Path) -> Any:
    """Load a skops file whose types are all in TRUSTED_TYPES.

    Raises:
        UntrustedModelError: the file is missing, not a skops file, or names a type
            outside the allowlist.
    """
    path = Path(path)
    if not path.is_file():
        raise UntrustedModelError(f"[M003] model file {path} not found")
    # The schema's own type names first (cheap); skops then audits every node again while
    # loading and refuses anything outside the list (one audit pass, not two: ~4 s per load).
    outside = sorted(t for t in file_types(path) if t not in TRUSTED_TYPES)
    if outside:
        raise UntrustedModelError(f"[M001] {path} contains unreviewed types: {outside}")
    try:
        return sio.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException:
        raise UntrustedModelError(f"[M001] {path} contains unreviewed types: {unreviewed_types(path)}") from None
    except (ValueError, TypeError, KeyError, AttributeError, zipfile.BadZipFile) as exc:
        raise UntrustedModelError(f"[M003] {path} is not a valid skops model file ({exc!r})") from None


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (model cards record it for the model and every training file)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
