"""The report page in a real headless Chromium: charts and tables render, and the page is not blank.

Skipped when no Chromium is installed (Debian: `apt-get install chromium`); set
SKILLPULSE_CHROMIUM to the browser's path to use another one.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pandas as pd
import pytest

from flows.demand import compute_demand
from flows.reporting import proficiency_table, report_tables, write_report

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1200, 2600
DIGCOMP_BLUE = (0x2F, 0x6F, 0xD6)
ECF_TEAL = (0x0F, 0x8B, 0x8D)
BRAND_BLUE = (0x1F, 0x4E, 0x9C)


def _chromium() -> str:
    for name in (os.environ.get("SKILLPULSE_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        path = shutil.which(name) if name else None
        if path:
            return path
    pytest.skip("no Chromium found (install the Debian package 'chromium' or set SKILLPULSE_CHROMIUM)")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG with the standard library: (width, height, RGB rows)."""
    blob = path.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, body = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 4 if color == 6 else 3
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, up_left = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(b for j, b in enumerate(line) if j % 4 != 3))
        prev = line
    return width, height, rows


def _report(toy_taxonomy, folder: Path) -> Path:
    ids = [f"p{i}" for i in range(1, 21)]
    postings = pd.DataFrame({
        "posting_id": ids,
        "country": ["UA"] * 10 + ["MD"] * 6 + ["GE"] * 3 + [None],
        "region": ["UA-30"] * 7 + ["UA-46"] * 3 + ["MD-CU"] * 6 + ["GE-TB"] * 3 + [None],
        "occupation": [None] * 20, "duplicate_of": [None] * 20, "source": ["board-a"] * 20,
    })
    comps = ["digcomp:1.3", "digcomp:2.1", "digcomp:3.1", "digcomp:3.4", "ecf:B.1"]
    pairs = [(pid, comps[j]) for i, pid in enumerate(ids) for j in range(len(comps)) if (i + j) % (j + 2) == 0]
    mentions = pd.DataFrame([{"mention_id": f"m{k}", "posting_id": p, "framework": c.split(":")[0],
                              "area_id": c.split(".")[0] if c.startswith("digcomp") else "ecf:B", "competence_id": c}
                             for k, (p, c) in enumerate(pairs)])
    demand = compute_demand(postings, mentions, toy_taxonomy)
    previous = compute_demand(postings, mentions[mentions.index % 3 != 0], toy_taxonomy)
    levels = pd.DataFrame({"posting_id": mentions["posting_id"],
                           "proficiency": ["specialist" if c == "ecf:B.1" else "basic" if c == "digcomp:2.1"
                                           else "advanced" for c in mentions["competence_id"]]})
    data = report_tables("2026-09", demand, previous, taxonomy=toy_taxonomy, previous_month="2026-08",
                         proficiency=proficiency_table(levels, postings))
    data.method = {"taxonomy_version": "toy@1", "model_version": "matcher-1", "sources": ["board-a"],
                   "run_info": {"postings": 21, "duplicates": 1, "duplicate_rate": 1 / 21, "quarantined": 2}}
    write_report(data, folder)
    return folder / "index.html"


def test_report_page_renders_in_chromium(toy_taxonomy, tmp_path: Path) -> None:
    browser = _chromium()
    page = _report(toy_taxonomy, tmp_path / "report")
    url = page.resolve().as_uri()

    dumped = _run(browser, tmp_path / "profile-dom", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert "<svg" in dom and dom.count('class="chart bars"') == 1 and dom.count('class="chart changes"') == 1
    assert dom.count('class="chart stacked"') == 1
    assert len(re.findall(r'<rect class="chart-bar"', dom)) >= 5 + 2  # top competences + changes
    assert len(re.findall(r'<rect class="segment"', dom)) >= 2
    region_table = dom.split('id="region-areas"', 1)[1].split("</table>", 1)[0]
    assert region_table.count("<tr") == 1 + 5  # header + UA-30, UA-46, MD-CU, GE-TB, unknown
    assert "Kyiv" in region_table and "Chișinău" in region_table and "Tbilisi" in region_table
    countries = dom.split('id="by-country"', 1)[1].split("</table>", 1)[0]
    assert countries.count("<tr") == 1 + 4

    shot = tmp_path / "page.png"
    taken = _run(browser, tmp_path / "profile-shot", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    width, height, rows = read_png(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    pixels = [tuple(row[i:i + 3]) for row in rows[::4] for i in range(0, len(row), 12)]  # every 4th pixel and row
    non_white = sum(1 for p in pixels if sum(p) < 735) / len(pixels)
    assert 0.05 < non_white < 0.9, f"page looks blank or flooded ({non_white:.1%} non-white)"
    assert len(set(pixels)) > 50  # text, charts and tables, not a flat fill

    def near(p: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 6 for a, b in zip(p, colour, strict=True))

    assert sum(near(p, BRAND_BLUE) for p in pixels[: len(pixels) // 20]) > 100  # the header band on top
    assert sum(near(p, DIGCOMP_BLUE) for p in pixels) > 200  # DigComp bars drawn
    assert sum(near(p, ECF_TEAL) for p in pixels) > 50  # e-CF bars drawn
