"""Every validation set of a run, origin (step 0) vs a version: the forgetting check of `ocrtrain runs RUN`."""
import json

import pytest

from ocrtrain.cli import main
from ocrtrain.errors import RunError
from ocrtrain.train import TrainConfig, fit
from ocrtrain.valsets import validation_summary

FAST = dict(max_steps=4, val_interval=2, batch_size=4, val_limit=6, workers=0, warmup_steps=1,
            freeze_feature_extractor=True, device="cpu", guard="", general_val=6, replay=0)


@pytest.fixture(scope="module")
def two_set_run(tiny_dataset, tmp_path_factory):
    return fit(TrainConfig(**FAST), tiny_dataset, tmp_path_factory.mktemp("vs") / "run").path


def test_summary_has_one_row_per_set_from_the_run_rows(two_set_run):
    from ocrtrain.runs import Run

    rows = validation_summary(two_set_run)
    assert [r["val_set"] for r in rows] == ["val", "general"]
    vals = Run(two_set_run).metrics("val")
    best = Run(two_set_run).best_version()
    for r in rows:
        mine = {v["step"]: v for v in vals if v["val_set"] == r["val_set"]}
        assert r["origin"] == mine[0]["accuracy_ws"] and r["n"] == mine[0]["n"] == 6
        assert r["step"] == (best["step"] if best else max(mine)) and r["version"] == mine[r["step"]]["accuracy_ws"]
        assert r["delta"] == pytest.approx(r["version"] - r["origin"])
        # one line of 6 is worth 1/6 < 1.5/6: a change of one line is "same", more is better/worse
        expected = "same (within one line)" if abs(r["delta"]) <= 1.5 / 6 else ("better" if r["delta"] > 0 else "worse")
        assert r["verdict"] == expected
    at_2 = validation_summary(two_set_run, metric="cer", step=2)
    assert all(r["step"] == 2 and r["metric"] == "cer" for r in at_2)


def test_cli_runs_on_a_run_folder_prints_the_sets(two_set_run, capsys):
    assert main(["runs", str(two_set_run)]) == 0
    out = capsys.readouterr().out
    assert "accuracy_ws: the origin (step 0) vs step" in out
    assert out.count("\n") == 4 and "general" in out and "VERDICT" in out
    assert main(["runs", str(two_set_run), "--json", "--metric", "cer_ws"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in rows} == {"cer_ws"} and len(rows) == 2


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(RunError):
        validation_summary(tmp_path)
