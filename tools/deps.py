"""Write requirements.txt, environment.yml and binder/environment.yml from pyproject.toml.

pyproject.toml is the one list of packages (runtime ``dependencies`` plus the ``dashboard``,
``synth``, ``tracking`` and ``test`` extras); the other files are rendered from it, and
tests/test_packaging.py fails when one of them differs from what this script writes.

    python tools/deps.py --write    # after editing pyproject.toml
    python tools/deps.py --check    # exit 1 and name the stale files
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
#: trdg 1.8.0 pins a yanked arabic-reshaper and python-bidi 0.4.2: installed on its own, without them.
TRDG = "trdg==1.8.0"
TRDG_INSTALL = f"pip install --no-deps {TRDG}"
#: Binder pods have no GPU: torch and torchvision from PyTorch's CPU index (about 200 MB, not 5 GB).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
CONDA_PYTHON = "python=3.11"
EXTRAS_ALL = ("dashboard", "synth", "tracking", "test")
EXTRAS_BINDER = ("dashboard", "synth")


def declared(root: Path = ROOT) -> dict[str, list[str]]:
    """``{"runtime": [...], EXTRA: [...]}``: the requirement strings of pyproject.toml."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"runtime": list(project["dependencies"]), **project.get("optional-dependencies", {})}


def _specs(groups: dict[str, list[str]], extras: tuple[str, ...]) -> list[str]:
    out = []
    for group in ("runtime", *extras):
        out += [s for s in groups[group] if s not in out]
    return out


def render_requirements(groups: dict[str, list[str]]) -> str:
    lines = [
        "# Generated from pyproject.toml by `python tools/deps.py --write`: edit pyproject.toml, not this file.",
        f"# Runtime plus the {', '.join(EXTRAS_ALL)} extras (`make setup` installs `-e .[{','.join(EXTRAS_ALL)}]`).",
        "# torch and torchvision come together from PyPI (easyocr imports torchvision).",
        f"# Then: {TRDG_INSTALL}  (its own pins are broken) and pip install --no-deps -e .",
    ]
    return "\n".join(lines + _specs(groups, EXTRAS_ALL)) + "\n"


def render_environment(groups: dict[str, list[str]], binder: bool = False) -> str:
    if binder:
        head = ["# Binder (CPU pod), generated from pyproject.toml by `python tools/deps.py --write`.",
                f"# Runtime plus the {', '.join(EXTRAS_BINDER)} extras; torch from PyTorch's CPU index;",
                "# postBuild adds trdg (without its broken pins) and ocrtrain itself."]
        pip = [f"--index-url {TORCH_CPU_INDEX}", f"--extra-index-url {PYPI_INDEX}"]
        pip += _specs(groups, EXTRAS_BINDER)
    else:
        head = ["# Conda environment, generated from pyproject.toml by `python tools/deps.py --write`.",
                f"# Runtime plus the {', '.join(EXTRAS_ALL)} extras. After `conda env create -f environment.yml`:",
                f"#   {TRDG_INSTALL} && pip install --no-deps -e ."]
        pip = _specs(groups, EXTRAS_ALL)
    body = ["name: ocrtrain", "channels:", "  - conda-forge", "dependencies:", f"  - {CONDA_PYTHON}", "  - pip",
            "  - pip:"] + [f"      - {_yaml_text(s)}" for s in pip]
    return "\n".join(head + body) + "\n"


def _yaml_text(spec: str) -> str:
    # Quote what YAML would misread (markers with ';', '#', ': ', a leading '-').
    return f'"{spec}"' if any(c in spec for c in ";#\"'") or ": " in spec or spec.startswith("-") else spec


def rendered(root: Path = ROOT) -> dict[Path, str]:
    """Each derived file and the text it must have."""
    groups = declared(root)
    return {
        root / "requirements.txt": render_requirements(groups),
        root / "environment.yml": render_environment(groups),
        root / "binder" / "environment.yml": render_environment(groups, binder=True),
    }


def stale(root: Path = ROOT) -> list[Path]:
    """The derived files whose text differs from what pyproject.toml gives."""
    return [p for p, text in rendered(root).items() if not p.is_file() or p.read_text(encoding="utf-8") != text]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="rewrite the derived files")
    group.add_argument("--check", action="store_true", help="exit 1 if a derived file is stale")
    args = parser.parse_args(argv)
    if args.write:
        for path, text in rendered().items():
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    old = stale()
    for path in old:
        print(f"{path.relative_to(ROOT)} is stale: run `python tools/deps.py --write`", file=sys.stderr)
    return 1 if old else 0


if __name__ == "__main__":
    sys.exit(main())
