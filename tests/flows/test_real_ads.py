"""Ingest of real job ads: 1,536 ads of a Moroccan job board (ReKrute, 2021), one JSON document.

The file (shared data, not in the repository) is one JSON object keyed by page index
("1_0": {...}) with title, country, location, url, date (dd/mm/yyyy) and skills_text, a
list of requirement lines: a `json` source, with the lines joined into the description.
Skipped when the shared data folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import datasets, ingest

REKRUTE = Path("data/jobads/rekrute-2021/rekrut_31_07_21_translated.json")
SOURCES = """\
sources:
  - name: rekrute
    kind: json
    path: {path}
    records_path: ""
    mapping: {{description: skills_text, posted_at: date, city: location}}
"""


@pytest.fixture(scope="module")
def rekrute(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = shared_dir / REKRUTE
    if not path.is_file():
        pytest.skip(f"{path} not found")
    cfg = tmp_path_factory.mktemp("rekrute") / "sources.yaml"
    cfg.write_text(SOURCES.format(path=path), encoding="utf-8")
    return cfg


def test_real_ads_every_ad_lands_or_is_quarantined_with_a_reason(rekrute: Path, tmp_path: Path) -> None:
    from prefect import Task
    from prefect.logging import disable_run_logger

    from flows.settings import PipelineSettings

    collected = ingest.collect(ingest.load_sources(str(rekrute)), (), "real")
    counts = collected.counts
    postings = [p for month in collected.by_month.values() for p in month]
    rejected = collected.quarantine["rekrute"]
    print(f"\nrekrute: read {counts['read']}, postings {len(postings)}, quarantined {counts['quarantined']}")
    reasons: dict[str, int] = {}
    for row in rejected:
        reasons[row["reason"].split(":")[0]] = reasons.get(row["reason"].split(":")[0], 0) + 1
    print("quarantine reasons:", reasons)
    assert counts["read"] == 1536
    assert counts["read"] == len(postings) + counts["quarantined"] + counts["out_of_range"]
    assert len(postings) >= 0.95 * counts["read"]
    assert all(len(row["reason"]) > 10 and row["location"].startswith("rekrut_31_07_21_translated.json:")
               for row in rejected)
    assert {p.month for p in postings} <= {"2021-01", "2021-02", "2021-06", "2021-07"}
    assert sum(p.language == "en" for p in postings) >= 0.9 * len(postings)  # the translated requirement lines
    assert any("\n" in p.text for p in postings)  # one requirement per line

    # the whole flow body: the datasets hold every posting, reconciled
    original = {name: obj for name, obj in vars(ingest).items() if isinstance(obj, Task)}
    try:
        for name, obj in original.items():
            setattr(ingest, name, obj.fn)
        with disable_run_logger():
            result = ingest.ingest_flow.fn(PipelineSettings(source=str(rekrute), out_dir=str(tmp_path)), "real")
    finally:
        for name, obj in original.items():
            setattr(ingest, name, obj)
    c = result["counts"]
    print("ingest flow:", c)
    assert c["read"] == c["kept"] + c["duplicates"] + c["quarantined"] + c["out_of_range"] == 1536
    assert len(datasets.read_dataset(tmp_path, "postings")) == c["kept"] + c["duplicates"] == len(postings)
    assert len(datasets.read_dataset(tmp_path, "quarantine")) == c["quarantined"]
