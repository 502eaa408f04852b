"""Ingest: staging in batches, month merge, watermarks and incremental runs (no Prefect server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from extractors.errors import SourceError
from flows import datasets, ingest, watermarks
from flows.settings import PipelineSettings
from flows.sources import RawRecord, load_sources

TEXTS = [
    "Шукаємо бухгалтера: облік, звітність, 1С та Excel, досвід від двох років.",
    "Python developer: Django, PostgreSQL, Docker and Git, remote work possible.",
    "Operator call-center, limba română și rusă, program flexibil, salariu bun.",
    "Водитель категории C, опыт от трёх лет, маршруты по городу и области.",
]


class Settings(PipelineSettings):
    """PipelineSettings with the `full_refresh` field ingest reads (until settings.py has it)."""

    full_refresh: bool = False


def _ad(i: int, month: int = 8, text: str | None = None) -> dict[str, Any]:
    body = text or f"{TEXTS[i % len(TEXTS)]} Вакансія номер {i}, офіс у центрі міста, графік 5/2."
    return {"id": f"ad-{i}", "title": f"Job {i}", "description": body, "city": "Київ",
            "posted_at": (date(2026, month, 1) + timedelta(days=i % 28)).isoformat()}


def _write(path: Path, ads: list[dict[str, Any] | str], mode: str = "w") -> Path:
    with path.open(mode, encoding="utf-8") as fh:
        for ad in ads:
            fh.write((ad if isinstance(ad, str) else json.dumps(ad, ensure_ascii=False)) + "\n")
    return path


@pytest.fixture
def run(ingest_bodies):  # type: ignore[no-untyped-def]
    """Run the ingest flow's body with its tasks' bodies: no Prefect server needed."""
    from prefect.logging import disable_run_logger

    def go(source: Path, out: Path, run_id: str, **settings: Any) -> dict[str, Any]:
        with disable_run_logger():
            return ingest.ingest_flow.fn(Settings(source=str(source), out_dir=str(out), **settings), run_id)

    return go


def _postings(out: Path) -> pd.DataFrame:
    return datasets.read_dataset(out, "postings").sort_values("posting_id").reset_index(drop=True)


def _reconciles(counts: dict[str, int]) -> bool:
    return counts["read"] == counts["kept"] + counts["duplicates"] + counts["quarantined"] + counts["out_of_range"]


def test_ingest_stages_in_batches_and_matches_collect(tmp_path: Path) -> None:
    ads: list[dict[str, Any] | str] = [_ad(i, month=7 + i % 3) for i in range(40)] + ["{not json"]
    ads.append(_ad(3, month=8))  # the same source id again: kept as a second posting
    source = load_sources(str(_write(tmp_path / "ads.jsonl", ads)))
    staged = ingest.stage(source, (), "r1", tmp_path / "staging", batch_rows=7)
    collected = ingest.collect(source, (), "r1")
    assert staged.counts == collected.counts and staged.counts["read"] == 42
    assert sorted(staged.months) == ["2026-07", "2026-08", "2026-09"]
    for month, path in staged.months.items():
        table = ingest.read_staged(path, datasets.POSTINGS)
        assert sorted(table["posting_id"].to_pylist()) == sorted(p.posting_id for p in collected.by_month[month])
    rejected = ingest.read_staged(staged.quarantine["ads"], datasets.QUARANTINE)
    assert rejected["location"].to_pylist() == [r["location"] for r in collected.quarantine["ads"]] == ["ads.jsonl:41"]


def test_ingest_writes_months_reconciles_and_cleans_staging(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    ads = [_ad(i) for i in range(10)] + [_ad(10, text=TEXTS[1]) | {"title": "Dev"},
                                         _ad(11, text=TEXTS[1].upper()) | {"title": "DEV"}]
    result = run(_write(tmp_path / "ads.jsonl", [*ads, {"id": "x", "description": "short"}]), tmp_path / "out", "r1")
    counts = result["counts"]
    assert _reconciles(counts) and counts == {"read": 13, "kept": 11, "duplicates": 1, "quarantined": 1,
                                              "out_of_range": 0}
    assert result["months"] == ["2026-08"] and result["sources"] == ["ads"]
    postings = _postings(tmp_path / "out")
    assert len(postings) == 12 and postings["duplicate_kind"].tolist().count("exact") == 1
    assert not (tmp_path / "out" / ingest.STAGING).exists()
    assert watermarks.load(tmp_path / "out", "ads")["records"] == 13  # type: ignore[index]


def test_ingest_second_run_reads_only_new_ads_and_merges_months(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    ads_file = _write(tmp_path / "ads.jsonl", [_ad(i) for i in range(6)])
    out = tmp_path / "out"
    first = run(ads_file, out, "r1")
    assert first["counts"]["read"] == 6
    copy = _ad(8, text=_ad(0)["description"]) | {"title": "Job 0"}  # the same words as ad-0
    _write(ads_file, [_ad(6), _ad(7, month=9), copy, "{broken"], mode="a")
    second = run(ads_file, out, "r2")
    assert second["counts"] == {"read": 4, "kept": 2, "duplicates": 1, "quarantined": 1, "out_of_range": 0}
    assert second["skipped"] == {"ads": 6} and second["months"] == ["2026-08", "2026-09"]
    postings = _postings(out)
    assert sorted(postings["source_id"]) == [f"ad-{i}" for i in range(9)]  # old and new
    assert postings.set_index("source_id").loc["ad-8", "duplicate_kind"] == "exact"  # of an ad of the first run
    assert set(postings["run_id"]) == {"r1", "r2"}
    third = run(ads_file, out, "r3")  # nothing new
    assert third["counts"]["read"] == 0 and third["months"] == [] and third["skipped"] == {"ads": 10}
    pd.testing.assert_frame_equal(_postings(out), postings)


def test_ingest_rerun_of_the_same_input_gives_identical_datasets(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    ads_file = _write(tmp_path / "ads.jsonl", [_ad(i) for i in range(8)] + ["{broken"])
    out = tmp_path / "out"
    run(ads_file, out, "r1")
    before = _postings(out).drop(columns=["run_id", "ingested_at"])
    quarantine = datasets.read_dataset(out, "quarantine").drop(columns=["run_id"])
    for settings in ({"full_refresh": True}, {"months": ("2026-08",)}):  # both read the whole file again
        again = run(ads_file, out, "r2", **settings)
        assert again["counts"]["read"] == 9
        pd.testing.assert_frame_equal(_postings(out).drop(columns=["run_id", "ingested_at"]), before)
        pd.testing.assert_frame_equal(datasets.read_dataset(out, "quarantine").drop(columns=["run_id"]), quarantine)


def test_ingest_full_refresh_replaces_months_and_merge_keeps_them(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    run(_write(tmp_path / "ads.jsonl", [_ad(i) for i in range(5)]), out, "r1")
    rewritten = _write(tmp_path / "ads.jsonl", [_ad(i) for i in range(3, 7)])  # not an append: read whole
    merged = run(rewritten, out, "r2")
    assert merged["counts"]["read"] == 4 and len(_postings(out)) == 7  # ad-0..6: nothing lost, nothing twice
    run(rewritten, out, "r3", full_refresh=True)
    assert sorted(_postings(out)["source_id"]) == ["ad-3", "ad-4", "ad-5", "ad-6"]


def test_ingest_failed_run_leaves_watermarks_and_partitions_as_they_were(
        tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ads_file = _write(tmp_path / "ads.jsonl", [_ad(i) for i in range(5)])
    out = tmp_path / "out"
    run(ads_file, out, "r1")
    mark_file = watermarks.state_dir(out) / "ads.json"
    files = {p: p.read_bytes() for p in [mark_file, *out.glob("postings/*/*.parquet")]}
    _write(ads_file, [_ad(i, month=9) for i in range(5, 12)], mode="a")
    real = watermarks.read_records

    def failing(source: Any) -> Iterator[RawRecord]:
        for n, raw in enumerate(real(source), 1):
            if n == 8:
                raise SourceError("[S007] Source 'ads': retries used up")
            yield raw

    monkeypatch.setattr(watermarks, "read_records", failing)
    with pytest.raises(SourceError, match="retries used up"):
        run(ads_file, out, "r2")
    assert {p: p.read_bytes() for p in files} == files
    assert not list(out.glob("postings/month=2026-09")) and not (out / ingest.STAGING).exists()
    monkeypatch.setattr(watermarks, "read_records", real)
    retry = run(ads_file, out, "r3")
    assert retry["counts"]["read"] == 7 and len(_postings(out)) == 12


def test_ingest_stale_staging_of_a_dead_run_is_removed(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "out" / ingest.STAGING / "dead-run"
    stale.mkdir(parents=True)
    (stale / "postings-0000.parquet").write_bytes(b"partial")
    run(_write(tmp_path / "ads.jsonl", [_ad(1)]), tmp_path / "out", "r1")
    assert not (tmp_path / "out" / ingest.STAGING).exists()


def test_watermarks_save_is_atomic_and_a_bad_file_means_read_all(tmp_path: Path) -> None:
    path = watermarks.save(tmp_path, {"version": watermarks.VERSION, "source": "a", "kind": "file"})
    assert path == tmp_path / "state" / "watermarks" / "a.json" and watermarks.load(tmp_path, "a") is not None
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary file left
    path.write_text("{half", encoding="utf-8")
    assert watermarks.load(tmp_path, "a") is None and watermarks.load(tmp_path, "missing") is None
    with pytest.raises(ValueError):
        watermarks.load(tmp_path, "../escape")


def test_watermarks_html_folder_reads_new_and_changed_pages(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in ("a", "b"):
        (pages / f"{name}.html").write_text(f"<title>{name}</title><p>{TEXTS[0]}</p>", encoding="utf-8")
    cfg = tmp_path / "s.yaml"
    cfg.write_text("sources:\n  - {name: pages, kind: html_folder, path: pages}\n", encoding="utf-8")
    (source,) = load_sources(str(cfg))
    first = watermarks.plan(source, None, "r1")
    assert [r.location for r in first.records()] == ["a.html", "b.html"]
    mark = first.finish()
    (pages / "b.html").write_text(f"<title>b</title><p>{TEXTS[1]} changed</p>", encoding="utf-8")
    (pages / "c.html").write_text(f"<title>c</title><p>{TEXTS[2]}</p>", encoding="utf-8")
    second = watermarks.plan(source, mark, "r2")
    assert [r.location for r in second.records()] == ["b.html", "c.html"] and second.skipped == 1


def test_watermarks_date_sources_skip_what_is_older(tmp_path: Path) -> None:
    from flows.sources import SourceConfig

    source = SourceConfig(name="api", kind="http_json", url="https://jobs.example.org/api")
    plan = watermarks.plan(source, {"version": 1, "source": "api", "kind": "date", "max_posted_date": "2026-08-10",
                                    "config": watermarks.config_hash(source)}, "r2")
    assert plan.since == date(2026, 8, 10) and plan.partial
    assert [plan.keep(date(2026, 8, d)) for d in (9, 10, 12)] == [False, True, True] and plan.skipped == 1
    assert plan.finish()["max_posted_date"] == "2026-08-12"
    changed = source.model_copy(update={"url": "https://jobs.example.org/api/v2"})
    assert watermarks.plan(changed, plan.finish(), "r3").since is None  # another config: read whole


@pytest.mark.slow
def test_ingest_flow_under_prefect_moves_watermarks(prefect_harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ads_file = _write(tmp_path / "ads.jsonl", [_ad(i) for i in range(4)])
    out = tmp_path / "out"
    first = ingest.ingest_flow(Settings(source=str(ads_file), out_dir=str(out)))
    _write(ads_file, [_ad(4), _ad(5)], mode="a")
    second = ingest.ingest_flow(Settings(source=str(ads_file), out_dir=str(out)))
    assert first["counts"]["read"] == 4 and second["counts"]["read"] == 2 and second["skipped"] == {"ads": 4}
    assert watermarks.load(out, "ads")["records"] == 6  # type: ignore[index]
    assert len(_postings(out)) == 6


def _reference_month(old: pa.Table | None, new: pa.Table) -> pa.Table:
    """What the former single-table path wrote: old rows not replaced, the run's rows, marks over all, by id."""
    from flows.dedupe import DedupeKey, mark_duplicates_sketched, sketch

    table = new
    if old is not None:
        table = pa.concat_tables([old.filter(pc.invert(pc.is_in(old["posting_id"], value_set=new["posting_id"]))), new])
    rows = table.to_pylist()
    marks = mark_duplicates_sketched([DedupeKey(r["posting_id"], r["posted_date"], r["content_hash"]) for r in rows],
                                     {r["content_hash"]: sketch(r["title"], r["text"]) for r in rows})
    for r in rows:
        r["duplicate_of"], r["duplicate_kind"] = marks[r["posting_id"]].duplicate_of, marks[r["posting_id"]].kind
    return pa.Table.from_pylist(rows, datasets.POSTINGS).sort_by("posting_id")


def _month_ads(first: int, n: int) -> list[dict[str, Any]]:
    """Ads of August with exact copies (the same words) and near copies (one word changed) among them."""
    ads = []
    for i in range(first, first + n):
        ad = _ad(i)
        if i % 5 == 1:
            ad = ad | {"title": _ad(i - 1)["title"].upper(), "description": _ad(i - 1)["description"].upper()}
        elif i % 5 == 2:
            ad = ad | {"title": _ad(i - 2)["title"], "description": _ad(i - 2)["description"] + " Excel."}
        ads.append(ad)
    return ads


def test_ingest_month_is_streamed_in_row_groups_with_the_single_table_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A month written in small row groups holds exactly the rows of the former in-memory path, merged or not."""
    monkeypatch.setattr(ingest, "READ_BATCH", 4)
    out = tmp_path / "out"
    first = load_sources(str(_write(tmp_path / "a.jsonl", _month_ads(0, 45))))
    staged = ingest.stage(first, (), "r1", tmp_path / "s1", batch_rows=6)
    new = ingest.read_staged(staged.months["2026-08"], datasets.POSTINGS)
    assert ingest.write_month(out, "2026-08", staged.months["2026-08"], merge=True, row_group_rows=7) == (27, 18)
    path = datasets.partition_file(out, "postings", "2026-08")
    assert pq.ParquetFile(path).metadata.num_row_groups == 7  # 45 rows, 7 a group
    written = pq.read_table(path)
    expected = _reference_month(None, new)
    assert written.equals(expected)
    kinds = written["duplicate_kind"].to_pylist()
    assert kinds.count("exact") == 9 and kinds.count("near") == 9
    # the same rows written with one big row group: the single-table layout
    big = tmp_path / "big"
    ingest.write_month(big, "2026-08", staged.months["2026-08"], merge=False, row_group_rows=1_000)
    assert pq.ParquetFile(datasets.partition_file(big, "postings", "2026-08")).metadata.num_row_groups == 1
    assert pq.read_table(datasets.partition_file(big, "postings", "2026-08")).equals(written)
    # a second run replaces some postings (same ids, other text) and adds others: merged by posting_id
    second = _month_ads(40, 20)
    second[0] = second[0] | {"description": TEXTS[2] + " Schimbat."}
    second_src = load_sources(str(_write(tmp_path / "a.jsonl", second)))
    staged2 = ingest.stage(second_src, (), "r2", tmp_path / "s2", batch_rows=5)
    new2 = ingest.read_staged(staged2.months["2026-08"], datasets.POSTINGS)
    kept, dups = ingest.write_month(out, "2026-08", staged2.months["2026-08"], merge=True, row_group_rows=6)
    merged = pq.read_table(path)
    assert merged.num_rows == 60 and pq.ParquetFile(path).metadata.num_row_groups == 10
    assert merged.equals(_reference_month(written, new2))
    run2 = merged.filter(pc.field("run_id") == "r2")
    assert run2.num_rows == kept + dups == 20 and dups == 20 - run2["duplicate_kind"].null_count
    assert set(merged["run_id"].to_pylist()) == {"r1", "r2"}
    assert not list(out.glob("postings/*/.*.tmp")) and not list((out / ingest.STAGING).glob("sort-*"))


def test_ingest_streamed_run_equals_a_run_in_one_row_group(tmp_path: Path, run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The flow with tiny batches and row groups writes the same datasets as with big ones."""
    ads_file = _write(tmp_path / "ads.jsonl", _month_ads(0, 30) + [_ad(i, month=9) for i in range(30, 40)])
    run(ads_file, tmp_path / "big", "r1", full_refresh=True)
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 4)
    monkeypatch.setattr(ingest, "READ_BATCH", 3)
    result = run(ads_file, tmp_path / "small", "r1", full_refresh=True)
    assert result["counts"] == {"read": 40, "kept": 28, "duplicates": 12, "quarantined": 0, "out_of_range": 0}
    for month, groups in (("2026-08", 8), ("2026-09", 3)):
        small = pq.ParquetFile(datasets.partition_file(tmp_path / "small", "postings", month))
        assert small.metadata.num_row_groups == groups
        big = pq.read_table(datasets.partition_file(tmp_path / "big", "postings", month))
        assert small.read().drop_columns(["ingested_at"]).equals(big.drop_columns(["ingested_at"]))
