"""Notebooks: committed clean, literal `parameters` cells, and every one executes with papermill.

The real notebooks run end to end on tiny parameters (a few dozen synthetic lines, 3 training
steps): 01 -> 02 -> 03 -> 04 in one run folder, then pipeline.ipynb with the same parameters in a
second one, whose metrics must equal the first (same seed on CPU = same metrics).
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import draw_line
from ocrtrain import notebooks
from ocrtrain.cli import main
from ocrtrain.errors import ConfigError, InputError, RunError
from ocrtrain.runfolder import latest_report

NOTEBOOKS = sorted(notebooks.NOTEBOOK_DIR.glob("*.ipynb"))
REPORTS = ["01_dataset", "02_finetune", "03_evaluate", "04_export", "pipeline"]
MAX_CELL_LINES = 12

# Tiny sizes shared by the chained notebooks and the pipeline, so their metrics can be compared.
DATA = {"count": 48, "seed": 5, "val_fraction": 0.2, "test_fraction": 0.2}
TRAIN = {"template": "quick-cpu", "max_steps": 3, "batch_size": 4, "val_interval": 3, "val_limit": 6,
         "seed": 5, "device": "cpu", "workers": 0, "overrides": {"warmup_steps": 1}}
# cpu as TRAIN's: the pipeline reads on TRAIN's device and must equal these metrics (the default, auto,
# would read on a GPU when torch sees one).
EVAL = {"limit": 6, "gallery_size": 3, "device": "cpu"}
EXPORT = {"parity_limit": 6, "device": "cpu"}


def _code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_project_notebooks_are_all_there():
    names = {p.stem for p in NOTEBOOKS}
    assert set(REPORTS) <= names, f"missing notebooks: {set(REPORTS) - names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_python3_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "papermill" not in nb.metadata
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: strip them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_tagged_parameters_with_literals_only(path):
    first = _code_cells(path)[0]
    assert "parameters" in first.metadata.get("tags", [])
    tree = ast.parse(first.source)
    assert tree.body, "the parameters cell is empty"
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), \
            f"{path.name}: parameters line {node.lineno} is not `name = literal`"
        ast.literal_eval(node.value)  # raises ValueError on anything but a literal
    # papermill must parse every line too (it warns and skips e.g. a second '=' in a comment).
    import papermill

    assert set(papermill.inspect_notebook(str(path))) == set(notebooks.read_parameters(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_later_cells_are_short_library_calls(path):
    for i, cell in enumerate(_code_cells(path)[1:], start=1):
        tree = ast.parse(cell.source)
        defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defined, f"{path.name} code cell {i} defines {defined[0].name}: move it into a module"
        assert len(cell.source.strip().splitlines()) <= MAX_CELL_LINES, f"{path.name} code cell {i} is too long"


# ------------------------------------------------------------------------------- the runner

def _toy_notebook(folder: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell("n = 3\nlabel = 'x'\nrun_dir = ''\nratio = 0.5\nflags = [1]")
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy.ipynb"
    nbformat.write(nb, path)
    return path


def _stdout(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")


def test_run_notebook_records_parameters_and_runs_this_python(tmp_path):
    _toy_notebook(tmp_path / "nb", "import sys\nprint(sys.executable, n, label, run_dir, ratio, flags)")
    out = notebooks.run_notebook("toy", tmp_path / "run", {"n": "7", "ratio": 1, "flags": "[2, 3]"},
                                 notebook_dir=tmp_path / "nb")
    run = (tmp_path / "run").resolve()
    assert out == run / "notebooks" / "toy.ipynb"
    assert _stdout(out).split() == [sys.executable, "7", "x", str(run), "1.0", "[2,", "3]"]
    record = json.loads((run / "notebooks" / "toy.params.json").read_text())
    assert record["state"] == "finished" and record["kernel"]["python"] == sys.executable
    assert record["parameters"] == {"n": 7, "ratio": 1.0, "flags": [2, 3], "run_dir": str(run)}
    assert record["effective"]["label"] == "x"
    assert nbformat.read(out, as_version=4).metadata["papermill"]["parameters"]["n"] == 7


def test_bad_parameters_are_rejected_before_running(tmp_path):
    _toy_notebook(tmp_path / "nb", "print(n)")
    with pytest.raises(ConfigError, match=r"'nn' \(did you mean 'n'\?\)"):
        notebooks.run_notebook("toy", tmp_path / "run", {"nn": 1}, notebook_dir=tmp_path / "nb")
    with pytest.raises(ConfigError, match="parameter n must be int"):
        notebooks.run_notebook("toy", tmp_path / "run", {"n": "many"}, notebook_dir=tmp_path / "nb")
    with pytest.raises(InputError, match="did you mean 'toy'"):
        notebooks.run_notebook("tyo", tmp_path / "run", notebook_dir=tmp_path / "nb")
    assert not (tmp_path / "run").exists()


def test_parameters_cell_with_code_is_refused(tmp_path):
    path = _toy_notebook(tmp_path, "print(n)")
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "import os\nn = os.cpu_count()"
    nbformat.write(nb, path)
    with pytest.raises(InputError, match="line 1 is not a `name = literal` assignment"):
        notebooks.read_parameters(path)


def test_failing_cell_raises_run_error_and_is_recorded(tmp_path):
    _toy_notebook(tmp_path / "nb", "assert n < 5, 'n too big'")
    with pytest.raises(RunError, match="AssertionError: n too big"):
        notebooks.run_notebook("toy", tmp_path / "run", {"n": 9}, notebook_dir=tmp_path / "nb")
    record = json.loads((tmp_path / "run" / "notebooks" / "toy.params.json").read_text())
    assert record["state"] == "failed" and "n too big" in record["error"]
    assert (tmp_path / "run" / "notebooks" / "toy.ipynb").is_file()  # keeps the traceback


def test_cli_run_notebook(tmp_path, capsys):
    path = _toy_notebook(tmp_path / "nb", "print('n is', n)")
    assert main(["run-notebook", str(path), "-p", "n", "4", "--run", str(tmp_path / "run")]) == 0
    out = tmp_path / "run" / "notebooks" / "toy.ipynb"
    assert f"executed notebook: {out.resolve()}" in capsys.readouterr().out
    assert "n is 4" in _stdout(out)
    assert main(["run-notebook", str(path), "-p", "nn", "4", "--run", str(tmp_path / "run2")]) == 1
    assert "did you mean 'n'" in capsys.readouterr().err


def test_cli_streams_outputs_into_a_new_run_under_ocrtrain_home(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path / "home"))
    path = _toy_notebook(tmp_path / "nb", "print('n is', n)")
    assert main(["run-notebook", str(path), "-p", "n", "5", "--log-output"]) == 0
    out = capsys.readouterr().out
    assert "n is 5" in out and "Executing Cell" not in out
    (run,) = (tmp_path / "home" / "runs").iterdir()
    assert run.name.endswith("-toy") and (run / "notebooks" / "toy.ipynb").is_file()


def test_strip_outputs(tmp_path):
    _toy_notebook(tmp_path / "nb", "print(n)")
    out = notebooks.run_notebook("toy", tmp_path / "run", notebook_dir=tmp_path / "nb")
    assert notebooks.strip_outputs(out) is True
    nb = nbformat.read(out, as_version=4)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code") and "papermill" not in nb.metadata
    assert notebooks.strip_outputs(out) is False


# ------------------------------------------------------------------------------- real notebooks

def _run(name: str, run: Path, params: dict) -> Path:
    out = notebooks.run_notebook(name, run, params)
    assert json.loads(out.with_suffix(".params.json").read_text())["state"] == "finished"
    return out


def _manifest(run: Path) -> dict:
    return json.loads((run / "dataset" / "manifest.json").read_text())


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    # Timing columns (step_s, samples_per_s, eta_s, ...) differ between runs by nature; the rest must match.
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]


@pytest.fixture(scope="module")
def chained(tmp_path_factory) -> Path:
    """01 -> 02 -> 03 -> 04 executed one after the other into one run folder."""
    run = tmp_path_factory.mktemp("chained") / "run"
    _run("01_dataset", run, {**DATA, "preview_count": 2})
    _run("02_finetune", run, TRAIN)
    _run("03_evaluate", run, EVAL)
    _run("04_export", run, EXPORT)
    return run


def test_chained_notebooks_leave_a_complete_run(chained):
    for name in ("01_dataset", "02_finetune", "03_evaluate", "04_export"):
        assert (chained / "notebooks" / f"{name}.ipynb").is_file()
    assert json.loads((chained / "status.json").read_text())["state"] == "finished"
    assert _manifest(chained)["total"] == DATA["count"]
    compare = json.loads(latest_report(chained, "compare").read_text())
    assert compare["before"] == "english_g2" and sum(compare["counts"].values()) == EVAL["limit"]
    parity = json.loads(latest_report(chained, "parity").read_text())
    assert parity["n"] == EXPORT["parity_limit"]
    assert {p.suffix for p in (chained / "export").iterdir()} == {".pth", ".yaml", ".py"}
    nb = nbformat.read(chained / "notebooks" / "02_finetune.ipynb", as_version=4)
    assert nb.metadata["papermill"]["parameters"]["max_steps"] == TRAIN["max_steps"]
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 2  # loss and validation curves
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    log_tail = printed.partition("last lines of the run's log:")[2]  # the last cell prints run.log_tail(5)
    assert f"finished at step {TRAIN['max_steps']}/{TRAIN['max_steps']}" in log_tail


def test_pipeline_reproduces_the_chained_metrics(chained, tmp_path):
    run = tmp_path / "pipeline"
    _run("pipeline", run, {**DATA, **TRAIN, "eval_limit": EVAL["limit"], "gallery_size": EVAL["gallery_size"],
                           "parity_limit": EXPORT["parity_limit"]})
    assert _manifest(run)["content_hash"] == _manifest(chained)["content_hash"]
    assert _metrics(run) == _metrics(chained)
    ours = json.loads(latest_report(run, "compare").read_text())["metrics"]
    theirs = json.loads(latest_report(chained, "compare").read_text())["metrics"]
    assert ours == theirs
    assert any((run / "export").glob("*.pth"))


def test_import_branch_of_the_dataset_notebook(tmp_path):
    src = tmp_path / "scans"
    src.mkdir()
    lines = ["Melk 1 l", "Brød 25,90", "Smør 42,50", "Rømme 19,90", "Blåbær 39,00", "Øl 24,90"]
    for i, text in enumerate(lines):
        draw_line(text).save(src / f"{i}.png")
    (src / "labels.txt").write_text("".join(f"{i}.png\t{t}\n" for i, t in enumerate(lines)), encoding="utf-8")
    run = tmp_path / "run"
    _run("01_dataset", run, {"import_from": str(src), "val_fraction": 0.2, "test_fraction": 0.2})
    assert _manifest(run)["total"] == len(lines)


def test_dashboard_notebook_builds_the_app(tmp_path):
    out = _run("dashboard", tmp_path / "run", {"workdir": str(tmp_path / "workspace")})
    assert (tmp_path / "workspace" / "runs").is_dir()
    assert not [o for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", [])
                if o.output_type == "error"]
