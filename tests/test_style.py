"""House style that can be checked mechanically: imports flow one way (notebooks -> ocrtrain.workbench ->
the engine, the rest of ocrtrain), the engine stays free of UI libraries, each heavy dependency is imported
in one module, the library does not print, public modules declare __all__."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import ocrtrain

PACKAGE = Path(ocrtrain.__file__).parent
#: The ipywidgets front end: the one part of the package that may import UI libraries.
WORKBENCH = "ocrtrain.workbench"
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


def walk(path, prefix):
    # pkgutil.walk_packages imports each package to walk it: the workbench would load ipywidgets.
    for info in pkgutil.iter_modules(path, prefix):
        if info.name == %r:
            continue  # the front end imports ipywidgets by design
        yield info
        if info.ispkg:
            yield from walk([info.module_finder.path + "/" + info.name.rpartition(".")[2]], info.name + ".")


for info in walk(ocrtrain.__path__, "ocrtrain."):
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
    proc = subprocess.run([sys.executable, "-c", _WALK % (FORBIDDEN, WORKBENCH)], capture_output=True, text=True,
                          timeout=300, cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "ocrtrain.imports" in result["names"] and "ocrtrain.cli.audit" in result["names"]
    assert "ocrtrain.documents.review" in result["names"]  # subpackages are walked
    assert not any(n.startswith(WORKBENCH) for n in result["names"])
    assert result["failed"] == {}, "modules that cannot be imported"
    assert set(result["baseline"]) <= {"tqdm"}, result["baseline"]
    assert result["culprits"] == {}, "import these lazily (inside the function that needs them) or not at all"


def test_importing_the_package_and_its_cli_loads_no_ui_library():
    # What `ocrtrain --help` and a script's `import ocrtrain` pay for: no front end, no ipywidgets.
    code = ("import json, sys, ocrtrain, ocrtrain.cli; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r or m.startswith(%r))))"
            % (tuple(m for m in FORBIDDEN if m != "tqdm"), WORKBENCH))  # tqdm: torch.hub's, see above
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_workbench(name: str) -> bool:
    return name == WORKBENCH or name.startswith(WORKBENCH + ".")


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module `module`'s code names in an import, relative ones resolved (``from . import x``: both)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


def test_imports_flow_one_way():
    # notebooks -> ocrtrain.workbench -> the engine: the engine never imports the front end (not even
    # lazily: the CLI and papermill runs have no ipywidgets), and the front end never imports the
    # notebooks (they are its users; ocrtrain.notebooks, the engine's runner, is fine).
    problems = []
    for path in _modules():
        module = _module_name(path)
        imported = _imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path)), module,
                                     path.name == "__init__.py")
        if _is_workbench(module):
            bad = {m for m in imported if m.split(".")[0] == "notebooks" or m.startswith("ocrtrain.notebook_files")}
        else:
            bad = {m for m in imported if _is_workbench(m)}
        problems += [f"{path.relative_to(PACKAGE.parent)} imports {m}" for m in sorted(bad)]
    assert any(_is_workbench(_module_name(p)) for p in _modules())
    assert problems == []


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
        if _is_workbench(_module_name(path)):
            continue  # the front end is where the UI libraries live
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
    sources = [p for folder in ("ocrtrain", "bench") for p in sorted((root / folder).rglob("*.py"))
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


#: Files of a dataset folder and a document set: only their owners spell these names (a run's
#: rejected.csv belongs to ocrtrain/runfolder.py).
FOLDER_FILE_NAMES = ("manifest.json", "rejected.csv")
FOLDER_FILE_OWNERS = {"ocrtrain/dataset.py", "ocrtrain/documents/docset.py", "ocrtrain/runfolder.py"}


def test_only_the_folder_owners_name_the_manifest():
    # A path literal (`folder / "manifest.json"`, also inside an f-string), not prose in a message: use
    # ocrtrain.dataset (MANIFEST, REJECTED, read_manifest, is_dataset_folder) or ocrtrain.documents.docset.
    root = PACKAGE.parent
    problems = []
    for path in _modules():
        rel = path.relative_to(root).as_posix()
        if rel in FOLDER_FILE_OWNERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and node.value in FOLDER_FILE_NAMES:
                problems.append(f"{rel}:{node.lineno} spells {node.value!r}: use its folder's owner module")
    assert any(p.name == "workspace.py" for p in _modules())
    assert problems == []
