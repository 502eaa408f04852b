"""flows/storage.py on a local folder and on fsspec's in-memory filesystem (memory://)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from extractors.errors import OutputError, SkillpulseError
from flows import storage
from flows.storage import RemotePath


@pytest.fixture(params=["local", "memory"])
def base(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[storage.Location]:
    """An empty output root: a temporary local folder, or a fresh memory:// bucket."""
    if request.param == "local":
        yield storage.root(str(tmp_path / "out"))
        return
    url = f"memory://skillpulse-test-{uuid.uuid4().hex[:8]}/out"
    yield storage.root(url)
    fs = fsspec.filesystem("memory")
    bucket = url.split("://", 1)[1].split("/", 1)[0]
    if fs.exists(f"/{bucket}"):
        fs.rm(f"/{bucket}", recursive=True)


def _names(paths: list[storage.Location]) -> list[str]:
    return [p.name for p in paths]


def test_root_parses_plain_paths_and_urls(tmp_path: Path) -> None:
    assert storage.root("skillpulse-data") == Path("skillpulse-data")
    assert storage.root(tmp_path) is tmp_path
    assert storage.root(f"file://{tmp_path}") == tmp_path
    remote = storage.root("memory://bucket/run")
    assert isinstance(remote, RemotePath) and storage.is_remote(remote)
    assert remote.path == "/bucket/run"
    assert str(remote) == "memory:///bucket/run"
    assert storage.root(str(remote)) == remote  # the URL it prints reads back as the same root
    assert str(remote / "postings" / "month=2025-01") == "memory:///bucket/run/postings/month=2025-01"
    assert (remote / "a.parquet").with_name("b.parquet").name == "b.parquet"
    assert (remote / "x" / "y").parent == remote / "x"
    assert not storage.is_remote(storage.root(str(tmp_path)))


def test_unknown_protocol_and_missing_package_are_clear_errors() -> None:
    with pytest.raises(OutputError, match=r"^\[O003\] Output root nosuch://x/y: Protocol not known: nosuch"):
        storage.root("nosuch://x/y")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(SkillpulseError, match=r"^\[O003\] Output root s3://bucket/run needs a package .*s3fs"):
            storage.root("s3://bucket/run")


def test_a_remote_path_is_not_a_local_path() -> None:
    remote = storage.root("memory://bucket/run")
    with pytest.raises(TypeError):
        open(remote / "x.txt", "w")  # type: ignore[call-overload]  # no __fspath__: never a stray local file
    with pytest.raises(ValueError, match="absolute"):
        remote / "/etc"


def test_folders_files_listing_and_removal(base: storage.Location) -> None:
    assert not storage.exists(base) and not storage.is_dir(base)
    assert storage.listdir(base) == [] and storage.dirs(base) == [] and storage.glob(base, "*") == []
    month = storage.join(base, "postings", "month=2025-01")
    storage.makedirs(month)
    assert storage.is_dir(month) and storage.is_dir(base)
    with storage.open_file(month / "part-0.parquet", "wb") as fh:
        fh.write(b"PAR1")
    with storage.open_file(month / "notes.txt", "w") as fh:
        fh.write("Київ — Chișinău\n")
    with storage.open_file(month / "notes.txt", "r") as fh:
        assert fh.read() == "Київ — Chișinău\n"
    assert (month / "notes.txt").read_text() == "Київ — Chișinău\n"
    assert storage.exists(month / "part-0.parquet") and not storage.is_dir(month / "part-0.parquet")
    assert _names(storage.listdir(month)) == ["notes.txt", "part-0.parquet"]
    assert _names(storage.glob(month, "*.parquet")) == ["part-0.parquet"]
    assert _names(storage.dirs(base / "postings")) == ["month=2025-01"]
    assert _names(list((base / "postings").rglob("*.parquet"))) == ["part-0.parquet"]
    storage.remove(month / "notes.txt")
    storage.remove(month / "notes.txt")  # missing_ok by default
    with pytest.raises(FileNotFoundError):
        storage.remove(month / "notes.txt", missing_ok=False)
    assert _names(storage.listdir(month)) == ["part-0.parquet"]


def test_atomic_publish_replaces_and_leaves_no_temporary_file(base: storage.Location) -> None:
    target = storage.join(base, "reports", "2025-01", "index.html")
    storage.publish_bytes(target, b"<p>old</p>")
    with storage.atomic_open(target, "w", newline="") as fh:
        fh.write("<p>new</p>\r\n")
    assert target.read_bytes() == b"<p>new</p>\r\n"
    assert _names(storage.listdir(target.parent)) == ["index.html"]
    assert storage.temp_beside(target).name == f".index.html.{os.getpid()}.tmp"


def test_a_failed_write_keeps_the_old_file_and_no_temporary_file(base: storage.Location) -> None:
    target = storage.join(base, "runs", "run-1.parquet")
    storage.publish_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="boom"), storage.atomic_open(target) as fh:
        fh.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert _names(storage.listdir(target.parent)) == ["run-1.parquet"]


def test_replace_moves_a_temporary_file_over_the_target(base: storage.Location) -> None:
    storage.makedirs(base)
    target = base / "state.json"
    tmp = storage.temp_beside(target)
    target.write_text("1")
    tmp.write_text("2")
    storage.replace(tmp, target)
    assert target.read_text() == "2" and not storage.exists(tmp)


def test_mtime_orders_writes_and_is_none_when_missing(base: storage.Location) -> None:
    assert storage.mtime(base / "nothing.parquet") is None
    storage.publish_bytes(base / "first", b"1")
    time.sleep(0.02)
    storage.publish_bytes(base / "second", b"2")
    first, second = storage.mtime(base / "first"), storage.mtime(base / "second")
    assert first is not None and second is not None
    assert first <= second
    assert abs(second - time.time()) < 60


def test_parquet_roundtrip_writer_footer_and_hive_dataset(base: storage.Location) -> None:
    schema = pa.schema([pa.field("posting_id", pa.string()), pa.field("n", pa.int64())])
    january = storage.join(base, "postings", "month=2025-01", "part-0.parquet")
    february = storage.join(base, "postings", "month=2025-02", "part-0.parquet")
    storage.makedirs(january.parent)
    storage.write_parquet(pa.table({"posting_id": ["a", "b"], "n": [1, 2]}, schema=schema), january,
                          compression="zstd")
    storage.makedirs(february.parent)
    with storage.parquet_writer(february, schema, compression="zstd") as writer:
        writer.write_table(pa.table({"posting_id": ["c"], "n": [3]}, schema=schema))
        writer.write_table(pa.table({"posting_id": ["d"], "n": [4]}, schema=schema))
    assert storage.read_parquet(january, columns=["posting_id"])["posting_id"].to_pylist() == ["a", "b"]
    footer = storage.parquet_file(february).metadata
    assert (footer.num_rows, footer.num_row_groups) == (2, 2)
    where, fs = storage.arrow(base / "postings")
    data = ds.dataset(where, filesystem=fs, format="parquet", partitioning="hive").to_table().to_pandas()
    assert sorted(zip(data["month"], data["posting_id"], data["n"], strict=True)) == [
        ("2025-01", "a", 1), ("2025-01", "b", 2), ("2025-02", "c", 3), ("2025-02", "d", 4)]
    # the URL opens as it is, with pandas
    frame = pd.read_parquet(str(base / "postings"))
    assert sorted(frame["posting_id"]) == ["a", "b", "c", "d"]


def test_exclusive_create_refuses_an_existing_file(base: storage.Location) -> None:
    storage.makedirs(base)
    lock = base / ".skillpulse.lock"
    assert storage.create_exclusive(lock, b'{"pid": 1}')
    assert not storage.create_exclusive(lock, b'{"pid": 2}')
    assert lock.read_bytes() == b'{"pid": 1}'
    storage.remove(lock)
    assert storage.create_exclusive(lock, b'{"pid": 3}')


def test_delete_a_folder_of_files(base: storage.Location) -> None:
    folder = storage.join(base, "quarantine", "source=a")
    storage.publish_bytes(folder / "part-0.parquet", b"x")
    for f in storage.glob(folder, "*"):
        storage.remove(f)
    folder.rmdir()
    assert not storage.exists(folder)
    assert storage.dirs(base / "quarantine") == []


def test_scratch_space_is_local(base: storage.Location) -> None:
    scratch = storage.scratch_dir(base)
    assert isinstance(scratch, Path)
    if storage.is_remote(base):
        assert scratch != storage.scratch_dir(storage.root("memory://another-bucket/out"))
        assert scratch == storage.scratch_dir(storage.root(str(base)))
    else:
        assert scratch == base
