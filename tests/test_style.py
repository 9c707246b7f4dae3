"""House style that can be checked mechanically: ocrtrain stays free of UI libraries, each heavy
dependency is imported in one module, the library does not print, public modules declare __all__."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import ocrtrain

PACKAGE = Path(ocrtrain.__file__).parent
FORBIDDEN = ("ipywidgets", "plotly", "IPython", "tqdm")
#: heavy dependency -> the one module allowed to import it
OWNERS = {"lmdb": "lmdb_io.py", "trdg": "synth.py", "easyocr": "easyocr_interop.py"}

_WALK = """
import importlib, json, pkgutil, sys
import ocrtrain
FORBIDDEN = set(%r)
# The core stack comes first: torch itself imports tqdm (torch.hub), which ocrtrain cannot avoid.
# Only what ocrtrain's own imports add on top of it is blamed (direct imports: see the AST test).
import numpy, PIL.Image, torch, yaml
baseline = sorted({m.split(".")[0] for m in sys.modules} & FORBIDDEN)
failed, names, culprits = {}, [], {}
for info in pkgutil.walk_packages(ocrtrain.__path__, "ocrtrain."):
    if info.name.endswith("__main__"):
        continue  # running it would start the CLI
    names.append(info.name)
    before = {m.split(".")[0] for m in sys.modules} & FORBIDDEN
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed[info.name] = f"{type(exc).__name__}: {exc}"
    new = ({m.split(".")[0] for m in sys.modules} & FORBIDDEN) - before
    if new:
        culprits[info.name] = sorted(new)  # the first module whose import brought them in
print(json.dumps({"names": names, "failed": failed, "culprits": culprits, "baseline": baseline}))
"""


def test_importing_every_module_loads_no_ui_library():
    # A fresh interpreter, so modules other tests imported do not count.
    proc = subprocess.run([sys.executable, "-c", _WALK % (FORBIDDEN,)], capture_output=True, text=True,
                          timeout=300, cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "ocrtrain.imports" in result["names"] and "ocrtrain.cli.audit" in result["names"]
    assert result["failed"] == {}, "modules that cannot be imported"
    assert set(result["baseline"]) <= {"tqdm"}, result["baseline"]
    assert result["culprits"] == {}, "import these lazily (inside the function that needs them) or not at all"


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def test_heavy_dependencies_have_one_home_and_ui_libraries_none():
    problems = []
    for path in _modules():
        roots = _imported_roots(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        rel = path.relative_to(PACKAGE).as_posix()
        for dep, owner in OWNERS.items():
            if dep in roots and rel != owner:
                problems.append(f"{rel} imports {dep} (only {owner} may)")
        for ui in FORBIDDEN:
            if ui in roots and not (ui == "tqdm" and rel == "cli/_progress.py"):  # the terminal's view of events
                problems.append(f"{rel} imports {ui} (ocrtrain never does)")
    assert problems == []


def test_library_does_not_print():
    problems = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/") or rel == "__main__.py":
            continue  # commands talk to the terminal
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                problems.append(f"{rel}:{node.lineno} calls print: emit an ocrtrain.events event or log")
    assert problems == []


def test_public_modules_declare_all():
    missing = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                 if isinstance(t, ast.Name)}
        if "__all__" not in names:
            missing.append(rel)
    assert missing == []


#: The literal names of a run folder's files: only ocrtrain/runfolder.py may spell them.
RUN_FILE_NAMES = ("status.json", "metrics.jsonl", "versions.json", "cancel.request", "log.txt", "config.json")
RUN_FILE_OWNERS = {
    "ocrtrain/runfolder.py",  # the owner of the run-folder format
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_only_runfolder_names_run_files():
    # Code, not prose: string literals (f-string parts included) that spell a run file; docstrings may
    # mention them. Go through ocrtrain.runfolder (files(run).status, read_status, ...) instead.
    root = PACKAGE.parent
    sources = [p for folder in ("ocrtrain", "widgets", "bench") for p in sorted((root / folder).rglob("*.py"))
               if "__pycache__" not in p.parts]
    problems = []
    for path in sources:
        rel = path.relative_to(root).as_posix()
        if rel in RUN_FILE_OWNERS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                for name in RUN_FILE_NAMES:
                    if name in node.value:
                        problems.append(f"{rel}:{node.lineno} spells {name!r}: use ocrtrain.runfolder")
    assert len(sources) > 40 and any(p.name == "monitor_panel.py" for p in sources)
    assert problems == []
