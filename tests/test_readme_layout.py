"""The README's "What is where" table names every module and subpackage of ocrtrain/ (issue #10:
the layout section follows the code when modules are added, split or renamed)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _what_is_where() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## What is where", 1)[1]
    return section.split("\n## ", 1)[0]


def test_what_is_where_names_every_top_level_module_and_subpackage():
    named = set(re.findall(r"`(?:ocrtrain/)?([A-Za-z_]\w*)/?`", _what_is_where()))
    package = ROOT / "ocrtrain"
    modules = {p.stem for p in package.glob("*.py") if not p.name.startswith("__")}
    subpackages = {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert {"runfolder", "workbench", "families"} <= modules | subpackages
    assert sorted((modules | subpackages) - named) == []
