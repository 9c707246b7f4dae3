"""pyproject.toml is the one list of packages: the derived files agree with it, it covers every
import of the engine and the dashboard, trdg's real dependencies, and Binder gets a CPU-only torch."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import deps  # noqa: E402  (tools/deps.py renders the derived files)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
GROUPS = deps.declared()


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _names(*groups: str) -> set[str]:
    return {_name(s) for g in groups for s in GROUPS[g]}


def _requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {_name(l) for l in lines if l.strip() and not l.lstrip().startswith(("#", "-"))}


def _conda_pip(path: Path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


def _conda(path: Path) -> list[str]:
    return [d for d in yaml.safe_load(path.read_text())["dependencies"] if isinstance(d, str)]


def test_derived_files_are_written_from_pyproject():
    assert deps.stale() == [], "run `python tools/deps.py --write` after editing pyproject.toml"


def test_check_names_a_stale_file(tmp_path):
    (tmp_path / "binder").mkdir()
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for path, text in deps.rendered(tmp_path).items():
        path.write_text(text)
    assert deps.stale(tmp_path) == []
    (tmp_path / "environment.yml").write_text(deps.rendered(tmp_path)[tmp_path / "environment.yml"] + "      - six\n")
    assert deps.stale(tmp_path) == [tmp_path / "environment.yml"]


def test_requirements_and_environments_name_the_declared_packages():
    everything = _names("runtime", "dashboard", "synth", "tracking", "test")
    assert _requirements() == everything
    assert {_name(s) for s in _conda_pip(ROOT / "environment.yml")} == everything
    binder = {_name(s) for s in _conda_pip(ROOT / "binder" / "environment.yml") if not s.startswith("-")}
    assert binder == _names("runtime", "dashboard", "synth")


def test_every_requirement_has_a_lower_bound():
    for group, specs in GROUPS.items():
        for spec in specs:
            assert re.search(r">=|==|~=", spec), f"{spec!r} ({group}) has no lower bound"


def _imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"ocrtrain", "__future__"}


def _distribution(module: str) -> str:
    dists = importlib.metadata.packages_distributions().get(module)
    assert dists, f"module {module!r} comes from no installed distribution"
    return dists[0].lower().replace("_", "-")


@pytest.mark.parametrize("folder,groups", [
    ("ocrtrain", ("runtime", "dashboard", "synth")),  # the engine: papermill/jupyter-client for run-notebook
    ("ocrtrain/workbench", ("runtime", "dashboard")),  # the front end: no synth
])
def test_every_import_is_declared(folder, groups):
    declared = _names(*groups)
    # trdg is installed on its own (--no-deps): its pins are broken
    missing = {m: _distribution(m) for m in _imports(ROOT / folder) if m != "trdg"}
    missing = {m: d for m, d in missing.items() if d not in declared}
    assert not missing, f"{folder} imports {missing} but pyproject.toml {groups} does not declare them"


def test_synth_extra_has_trdgs_real_dependencies():
    # trdg's own Requires-Dist, without its broken pins, as the distributions we use instead.
    instead = {"opencv-python": "opencv-python-headless"}
    test_only = {"diffimg"}  # used by trdg's tests, never imported by its generator
    needed = {instead.get(_name(r), _name(r)) for r in importlib.metadata.requires("trdg") or []}
    assert needed - test_only <= _names("runtime", "synth")


def test_trdg_installed_without_pins_everywhere():
    line = f"--no-deps {deps.TRDG}"
    assert line in (ROOT / "binder" / "postBuild").read_text()
    assert line in (ROOT / "Makefile").read_text()
    from ocrtrain.optional import TRDG_REQUIREMENT

    assert TRDG_REQUIREMENT == deps.TRDG


def test_makefile_installs_the_extras_the_tests_need():
    make = (ROOT / "Makefile").read_text()
    assert "-e '.[dashboard,synth,tracking,test]'" in make


def test_binder_gets_cpu_only_torch():
    pip = _conda_pip(ROOT / "binder" / "environment.yml")
    options = [s.split() for s in pip if s.startswith("-")]
    # The CPU index is the primary one, so its +cpu wheels win over PyPI's CUDA build.
    assert ["--index-url", deps.TORCH_CPU_INDEX] in options
    assert not any(o[0] == "--extra-index-url" and "download.pytorch.org" in o[1] and "cpu" not in o[1]
                   for o in options)
    names = {_name(s) for s in pip if not s.startswith("-")}
    assert {"torch", "torchvision"} <= names
    assert not any(n.startswith(("nvidia-", "cuda")) for n in names)
    conda = {re.split(r"[=<> ]", d)[0] for d in _conda(ROOT / "binder" / "environment.yml")}
    assert not conda & {"pytorch", "pytorch-cuda", "cudatoolkit", "cuda"}, "torch must come from the CPU pip index"
    # repo2docker would also read a requirements.txt next to it
    assert not (ROOT / "binder" / "requirements.txt").exists()


def test_listed_packages_are_every_package_folder():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for root in ("ocrtrain",)
               for p in (ROOT / root).rglob("*") if p.is_file() and p.suffix in (".py", ".txt", ".yaml")
               and "__pycache__" not in p.parts}
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert mapped == {"ocrtrain.notebook_files": "notebooks"}
    assert listed == folders | set(mapped)


def test_one_version_source():
    import ocrtrain

    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ocrtrain.__version__"}
    assert importlib.metadata.version("ocrtrain") == ocrtrain.__version__
    out = subprocess.run([sys.executable, "-m", "ocrtrain", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"ocrtrain {ocrtrain.__version__}"
