"""The `skillpulse` command as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _skillpulse(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"COLUMNS": "200", "NO_COLOR": "1"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_cli_help_lists_the_commands(tmp_path: Path) -> None:
    result = _skillpulse("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "ingest", "extract", "aggregate", "report", "taxonomy"):
        assert command in result.stdout
    for command in ("run", "ingest", "extract", "aggregate", "report", "taxonomy show", "taxonomy validate"):
        sub = _skillpulse(*command.split(), "--help", cwd=tmp_path)
        assert sub.returncode == 0 and "Usage" in sub.stdout, command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--source", "missing.jsonl"], "Source 'missing.jsonl' not found"),
        (["run", "-s", "ads.jsonl", "--taxonomy", "no-such-taxonomy"], "Taxonomy 'no-such-taxonomy' not found"),
        (["run", "-s", "ads.jsonl", "--out", "blocker/out"], "Output folder blocker/out is not writable"),
        (["run", "-s", "ads.jsonl", "--months", "2026-13"], "month must be YYYY-MM"),
        (["run", "-s", "sources.yaml"], "Source 'board': file"),
        (["extract", "--out", "empty"], "has no postings/"),
        (["taxonomy", "validate", "bad.csv"], "unknown competence 'digcomp:9.9'"),
    ],
)
def test_cli_user_errors_exit_2_with_one_message(tmp_path: Path, toy_ads: Path, args: list[str], message: str) -> None:
    (tmp_path / "ads.jsonl").write_bytes(toy_ads.read_bytes())
    (tmp_path / "sources.yaml").write_text("sources:\n  - {name: board, kind: csv, path: gone.csv}\n", encoding="utf-8")
    (tmp_path / "blocker").write_text("a file, not a folder")
    (tmp_path / "bad.csv").write_text("id,label_en,competences\nfoo,Foo,digcomp:9.9\n", encoding="utf-8")
    result = _skillpulse(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_taxonomy_show_prints_the_tree(tmp_path: Path, toy_taxonomy_dir: Path) -> None:
    result = _skillpulse("taxonomy", "show", "--taxonomy", str(toy_taxonomy_dir), cwd=tmp_path)
    assert result.returncode == 0
    assert "toy@" in result.stdout and "Programming" in result.stdout
    assert "3.4" in result.stdout and "1 concepts" in result.stdout


@pytest.mark.slow
def test_cli_run_with_a_temporary_prefect_server(tmp_path: Path, toy_ads: Path, toy_taxonomy_dir: Path) -> None:
    result = _skillpulse(
        "run", "--source", str(toy_ads), "--taxonomy", str(toy_taxonomy_dir), "--out", "out", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done." in result.stdout and str(tmp_path / "out") in result.stdout
    assert "│   10 │    4 │          1 │           5 │" in result.stdout
    assert "Managing data, information and digital content" in result.stdout
    assert (tmp_path / "out" / "reports" / "2026-08" / "index.html").is_file()


def test_cli_taxonomy_import_esco_and_use_it(tmp_path: Path) -> None:
    esco = Path(__file__).resolve().parent.parent / "fixtures" / "esco_mini"
    result = _skillpulse("taxonomy", "import-esco", str(esco), "--collection", "all", "--out", "esco-tax", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Wrote esco" in result.stdout and (tmp_path / "esco-tax" / "competences.csv").is_file()
    shown = _skillpulse("taxonomy", "show", "--taxonomy", "esco-tax", cwd=tmp_path)
    direct = _skillpulse("taxonomy", "show", "--taxonomy", f"esco:{esco}", cwd=tmp_path)
    assert shown.returncode == direct.returncode == 0
    assert "esco" in shown.stdout and "DigComp" not in shown.stderr
    assert shown.stdout.splitlines()[0].split(":")[0] == direct.stdout.splitlines()[0].split(":")[0]


def test_cli_link_ranks_concepts_and_reports_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"id": "a", "text": "Strong Python and SQL skills, experience with Docker."}\nnot json\n', encoding="utf-8"
    )
    env = {"SKILLPULSE_CACHE_DIR": str(tmp_path / "cache")}  # concept vectors: not in the user's cache
    result = _skillpulse("link", "--input", "in.jsonl", "--output", "out.jsonl", "--top-k", "3", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "linked 1 of 2 texts (1 bad lines)" in result.stdout and "line': 2" in result.stderr
    # the default re-ranks with sentence embeddings (flows.link.DEFAULT_RERANK)
    assert "concept embeddings computed in" in result.stdout
    assert re.search(r"link: embedding the concepts once for this taxonomy \(then cached\): ([\d,]+) of \1",
                     result.stdout)
    assert list((tmp_path / "cache" / "embeddings").glob("*-label_desc-*.npy"))
    (line,) = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["id"] == "a" and len(record["candidates"]) == 3
    assert {c["concept_id"] for c in record["candidates"]} == {"python", "sql", "docker"}
    scores = [c["score"] for c in record["candidates"]]
    assert scores == sorted(scores, reverse=True)
