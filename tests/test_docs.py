"""The documentation stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from flows import datasets

ROOT = Path(__file__).resolve().parent.parent


def test_docs_data_dictionary_describes_every_column() -> None:
    text = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\w+)/.*?\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    for name, schema in datasets.SCHEMAS.items():
        documented = re.findall(r"^\| (\w+) \|", sections[name], flags=re.M)
        assert documented[1:] == schema.names, name  # the first match is the table header


def test_docs_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands = [line.split("#")[0].strip() for line in lines[:8] if line.startswith("pip install")]
    assert commands == ["pip install -e . && skillpulse run", "pip install -e '.[test]' && pytest"]
    assert "pip install -e '.[test]' && pytest" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
