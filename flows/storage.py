"""The output root on a local disk or on any fsspec filesystem (s3://, gs://, memory://, ...).

`root(out_dir)` parses the output root. A plain path (or a ``file://`` URL) gives a
`pathlib.Path`, and every function here then does exactly what the flows always did:
plain `os` / `pathlib` / `pyarrow` calls, no fsspec in the way. A URL gives a
`RemotePath`: the same small part of the `pathlib.Path` interface the flows use
(``/``, ``name``, ``parent``, ``with_name``, ``exists``, ``is_dir``, ``mkdir``,
``iterdir``, ``glob``, ``rglob``, ``open``, ``read_text``, ``write_text``,
``unlink``, ``rmdir``), carried out through the URL's fsspec filesystem
(``fsspec.core.url_to_fs``). A `RemotePath` has no ``__fspath__`` on purpose:
handing it to ``open()`` or ``os.*`` fails at once instead of writing a local file
named like a URL.

What is atomic where:

- `replace(tmp, target)` publishes a file written beside its target: ``os.replace``
  on a local disk (atomic, a reader sees the old file or the new one), ``fs.mv`` on
  a remote filesystem. On object stores (S3, GCS, Azure) a move is a copy and a
  delete: the target object appears whole (per-file atomicity), but the move of
  several files, or of a folder, is not atomic, and a killed run can leave the
  temporary object beside the target (`flows.datasets.remove_leftovers` removes
  it on the next run).
- `create_exclusive(path, data)` creates the lock file only if it does not exist:
  ``os.open(O_CREAT | O_EXCL)`` locally; mode ``"xb"`` on a remote filesystem,
  which is exclusive only where the backend makes it so (memory:// within one
  process; on S3 or GCS it depends on the s3fs/gcsfs version). Where it is not, two runs
  started at the same instant on one remote root may both take the lock: the
  lock is best effort there.
- `mtime(path)`: ``os.stat`` locally; remotely the filesystem's modification time
  (``fs.modified``, else the ``mtime`` / ``LastModified`` / ``updated`` /
  ``created`` entry of ``fs.info``), or None when the backend records none.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from extractors.errors import OutputError

_LOCAL_PROTOCOLS = ("file", "local")


class RemotePath:
    """A path on an fsspec filesystem, with the part of `pathlib.Path` the flows use."""

    __slots__ = ("fs", "path")

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path.rstrip("/") if path not in ("", "/") else path

    # --- names ----------------------------------------------------------------------------------------
    def __truediv__(self, other: str | os.PathLike[str]) -> RemotePath:
        part = str(other)
        if part.startswith("/") or "://" in part:
            raise ValueError(f"cannot join an absolute path {part!r} to {self}")
        return RemotePath(self.fs, posixpath.join(self.path, part) if self.path else part)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def suffix(self) -> str:
        return posixpath.splitext(self.name)[1]

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.fs, posixpath.dirname(self.path))

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def resolve(self) -> RemotePath:
        return self

    @property
    def url(self) -> str:
        return str(self.fs.unstrip_protocol(self.path))

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemotePath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and self.url == other.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __lt__(self, other: RemotePath) -> bool:
        return self.path < other.path

    # --- queries --------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.path))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def iterdir(self) -> Iterator[RemotePath]:
        if not self.is_dir():
            raise FileNotFoundError(f"no folder {self}")
        for entry in self.fs.ls(self.path, detail=False):
            entry = entry.rstrip("/")
            if entry != self.path:
                yield RemotePath(self.fs, entry)

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Entries of this folder whose name matches `pattern` (one level, like `Path.glob("*.x")`)."""
        if "/" in pattern or "**" in pattern:
            raise ValueError(f"RemotePath.glob takes a one-level pattern, not {pattern!r}")
        if not self.is_dir():
            return
        for entry in self.iterdir():
            if fnmatch.fnmatchcase(entry.name, pattern):
                yield entry

    def rglob(self, pattern: str) -> Iterator[RemotePath]:
        """Files anywhere below this folder whose name matches `pattern`."""
        if not self.is_dir():
            return
        for entry in sorted(self.fs.find(self.path)):
            if fnmatch.fnmatchcase(posixpath.basename(entry), pattern):
                yield RemotePath(self.fs, entry)

    # --- changes --------------------------------------------------------------------------------------
    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        """Create the folder (and its parents). Object stores have no folders: this may do nothing."""
        self.fs.makedirs(self.path, exist_ok=True)

    def open(self, mode: str = "r", encoding: str | None = None, newline: str | None = None) -> IO[Any]:
        if "b" in mode:
            return self.fs.open(self.path, mode)  # type: ignore[no-any-return]
        return self.fs.open(self.path, mode, encoding=encoding or "utf-8", newline=newline)  # type: ignore[no-any-return]

    def read_bytes(self) -> bytes:
        return bytes(self.fs.cat_file(self.path))

    def read_text(self, encoding: str | None = "utf-8") -> str:
        return self.read_bytes().decode(encoding or "utf-8")

    def write_bytes(self, data: bytes) -> int:
        self.fs.pipe_file(self.path, bytes(data))
        return len(data)

    def write_text(self, text: str, encoding: str | None = "utf-8") -> int:
        return self.write_bytes(text.encode(encoding or "utf-8"))

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmdir(self) -> None:
        """Remove an empty folder. On object stores a folder goes with its last file: then nothing is left to do."""
        try:
            self.fs.rmdir(self.path)
        except FileNotFoundError:
            pass


Location = Path | RemotePath


# --- the root -------------------------------------------------------------------------------------------

def is_url(value: str | os.PathLike[str]) -> bool:
    return isinstance(value, str) and "://" in value


def root(out_dir: str | os.PathLike[str] | RemotePath) -> Location:
    """The output root: a `Path` for a local folder (or ``file://`` URL), else a `RemotePath`.

    Raises:
        OutputError: the URL's protocol is unknown, or needs a package that is not installed.
    """
    if isinstance(out_dir, Path | RemotePath):
        return out_dir
    text = os.fspath(out_dir)
    if "://" not in text:
        return Path(text)
    protocol = text.split("://", 1)[0]
    if protocol in _LOCAL_PROTOCOLS:
        return Path(text.split("://", 1)[1])
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(text)
    except ImportError as exc:
        raise OutputError(f"[O003] Output root {text} needs a package that is not installed: {exc}") from None
    except ValueError as exc:
        raise OutputError(f"[O003] Output root {text}: {exc} (known: a folder, file://, memory://, s3:// with "
                          "s3fs, gs:// with gcsfs, az:// with adlfs)") from None
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return Path(path)
    return RemotePath(fs, path)


def is_remote(path: Location | str) -> bool:
    return isinstance(path, RemotePath)


def join(base: Location, *parts: str) -> Location:
    out = base
    for part in parts:
        out = out / part
    return out


def exists(path: Location) -> bool:
    return path.exists()


def is_dir(path: Location) -> bool:
    return path.is_dir()


def makedirs(path: Location) -> None:
    path.mkdir(parents=True, exist_ok=True)


def listdir(path: Location) -> list[Location]:
    """The entries of a folder, sorted ([] when it does not exist)."""
    if not path.is_dir():
        return []
    return sorted(path.iterdir())  # type: ignore[type-var]


def dirs(path: Location) -> list[Location]:
    """The sub-folders of a folder, sorted."""
    return [p for p in listdir(path) if p.is_dir()]


def glob(path: Location, pattern: str) -> list[Location]:
    """Entries of the folder matching a one-level pattern, sorted."""
    return sorted(path.glob(pattern))  # type: ignore[type-var]


def open_file(path: Location, mode: str = "rb", encoding: str | None = None, newline: str | None = None) -> IO[Any]:
    """Open for reading or writing, binary or text (text is UTF-8 unless `encoding` says otherwise)."""
    if "b" in mode:
        return path.open(mode)
    return path.open(mode, encoding=encoding or "utf-8", newline=newline)


def remove(path: Location, missing_ok: bool = True) -> None:
    path.unlink(missing_ok=missing_ok)


def replace(tmp: Location, target: Location) -> None:
    """Move a finished file over its target: ``os.replace`` locally (atomic), ``fs.mv`` remotely (see the module)."""
    if isinstance(tmp, RemotePath):
        if not isinstance(target, RemotePath) or target.fs.protocol != tmp.fs.protocol:
            raise ValueError(f"cannot move {tmp} to {target}: not on one filesystem")
        tmp.fs.mv(tmp.path, target.path)
        return
    os.replace(tmp, target)  # type: ignore[arg-type]


def temp_beside(target: Location) -> Location:
    """The hidden temporary name a file is written under before `replace` publishes it."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_open(target: Location, mode: str = "wb", encoding: str | None = None,
                newline: str | None = None) -> Iterator[IO[Any]]:
    """Write `target` through a temporary file beside it, published when the block ends without error."""
    makedirs(target.parent)
    tmp = temp_beside(target)
    try:
        with open_file(tmp, mode, encoding=encoding, newline=newline) as fh:
            yield fh
    except BaseException:
        remove(tmp)
        raise
    replace(tmp, target)


def publish_bytes(target: Location, data: bytes) -> None:
    """Write `data` to `target` atomically (temporary file beside it, then `replace`)."""
    with atomic_open(target, "wb") as fh:
        fh.write(data)


def mtime(path: Location) -> float | None:
    """Modification time (seconds since the epoch), or None when the file is missing or the backend has none."""
    if not isinstance(path, RemotePath):
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return None
    try:
        return _seconds(path.fs.modified(path.path))
    except FileNotFoundError:
        return None
    except (NotImplementedError, AttributeError, KeyError, TypeError, ValueError):
        pass
    try:
        info = path.fs.info(path.path)
    except FileNotFoundError:
        return None
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = _seconds(info.get(key))
        if value is not None:
            return value
    return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


# --- Parquet --------------------------------------------------------------------------------------------

def arrow(path: Location) -> tuple[str, Any]:
    """(path, filesystem) for pyarrow: the local path and None, or the remote path and a pyarrow wrapper of its fs."""
    if not isinstance(path, RemotePath):
        return str(path), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return path.path, PyFileSystem(FSSpecHandler(path.fs))


def write_parquet(table: pa.Table, path: Location, **kwargs: Any) -> None:
    """`pq.write_table` to a local or remote path (not atomic: write a `temp_beside` and `replace`)."""
    if not isinstance(path, RemotePath):
        pq.write_table(table, path, **kwargs)
        return
    with path.open("wb") as fh:
        pq.write_table(table, fh, **kwargs)


def read_parquet(path: Location, **kwargs: Any) -> pa.Table:
    """`pq.read_table` of one local or remote file."""
    if not isinstance(path, RemotePath):
        return pq.read_table(path, **kwargs)
    where, fs = arrow(path)
    return pq.read_table(where, filesystem=fs, **kwargs)


def parquet_file(path: Location) -> pq.ParquetFile:
    """A `pq.ParquetFile` (footer, row groups, batches) of a local or remote file."""
    if not isinstance(path, RemotePath):
        return pq.ParquetFile(path)
    where, fs = arrow(path)
    return pq.ParquetFile(where, filesystem=fs)


@contextmanager
def parquet_writer(path: Location, schema: pa.Schema, **kwargs: Any) -> Iterator[pq.ParquetWriter]:
    """A `pq.ParquetWriter` on a local or remote path, closed when the block ends."""
    if not isinstance(path, RemotePath):
        with pq.ParquetWriter(path, schema, **kwargs) as writer:
            yield writer
        return
    with path.open("wb") as fh, pq.ParquetWriter(fh, schema, **kwargs) as writer:
        yield writer


# --- the lock file and scratch space --------------------------------------------------------------------

def create_exclusive(path: Location, data: bytes) -> bool:
    """Create `path` holding `data` if it does not exist; False if it does (see the module on remote roots)."""
    if not isinstance(path, RemotePath):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True
    try:
        with path.fs.open(path.path, "xb") as fh:
            fh.write(data)
    except FileExistsError:
        return False
    except (ValueError, NotImplementedError):  # the backend has no exclusive mode: check, then write
        if path.exists():
            return False
        path.write_bytes(data)
    return True


def scratch_dir(out_root: Location) -> Path:
    """A local folder for a run's scratch files: the root itself when local; a folder per root in the temp dir else."""
    if not isinstance(out_root, RemotePath):
        return out_root
    digest = hashlib.sha1(out_root.url.encode("utf-8")).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"skillpulse-scratch-{digest}"


def to_bytes(write: Any) -> bytes:
    """What `write(file_object)` writes, as bytes (for writers that want a seekable file, e.g. openpyxl)."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()
