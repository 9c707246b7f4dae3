"""Optional experiment logging: `ocrtrain train --log-to tensorboard` (foreground and --detach),
`ocrtrain resume RUN --log-to tensorboard` and the Train tab's checkbox on tiny real runs, read back
with TensorBoard's own EventAccumulator."""
from __future__ import annotations

import builtins
import json
import threading

import pytest

from ocrtrain.cli import main
from ocrtrain.runs import Run

@pytest.fixture
def tensorboard():
    return pytest.importorskip("tensorboard", reason="the tracking extra: pip install 'ocrtrain[tracking]'")


def _scalars(log_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


TRAIN = ["--max-steps", "3", "--val-interval", "2", "--batch-size", "4", "--val-limit", "4", "--workers", "0",
         "--warmup-steps", "1", "--freeze-feature-extractor", "--device", "cpu", "--seed", "5"]


def test_cli_train_logs_steps_and_every_validation_set_to_tensorboard(tensorboard, tiny_dataset, tmp_path,
                                                                       capsys):
    run_dir = tmp_path / "tb"
    code = main(["train", "--data", str(tiny_dataset), "--run", str(run_dir), "--log-to", "tensorboard", *TRAIN])
    assert code == 0, capsys.readouterr()
    scalars = _scalars(run_dir / "tensorboard")
    run = Run(run_dir)
    train = run.metrics("train")
    assert [s for s, _ in scalars["train/loss"]] == [r["step"] for r in train] == [1, 2, 3]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([r["train_loss"] for r in train], rel=1e-6)
    assert [s for s, _ in scalars["train/lr"]] == [1, 2, 3]
    # Each validation set is its own series of one chart per metric: the origin at step 0, then 2 and 3.
    for val_set in ("val", "general"):
        rows = [r for r in run.metrics("val") if r["val_set"] == val_set]
        for metric in ("cer", "accuracy", "val_loss"):
            got = scalars[f"{metric}/{val_set}"]
            assert [s for s, _ in got] == [r["step"] for r in rows] == [0, 2, 3], (metric, val_set)
            assert [v for _, v in got] == pytest.approx([r[metric] for r in rows], rel=1e-6)
    assert not any(tag.startswith(("best_", "is_best", "n/")) for tag in scalars)


def test_resume_appends_and_drops_the_redone_steps(tensorboard, tiny_dataset, tmp_path):
    import threading

    from ocrtrain.cli.train import _foreground
    from ocrtrain.datamix import DataSpec
    from ocrtrain.train import TrainConfig, TrainStep, fit
    from ocrtrain.tracking import TensorBoardLogger

    run_dir = tmp_path / "resumed"
    config = TrainConfig(max_steps=4, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
                         freeze_feature_extractor=True, device="cpu", baseline=False, save_minutes=0)
    stop = threading.Event()
    logger = TensorBoardLogger(run_dir)

    def stop_after_3(event):
        logger(event)
        if isinstance(event, TrainStep) and event.step == 3:
            stop.set()  # canceled at step 3: last.pt holds step 3
    fit(config, DataSpec.parse([str(tiny_dataset)], []), run_dir, callback=stop_after_3, stop_event=stop)
    run = Run(run_dir)
    assert run.status()["state"] == "canceled" and run.status()["step"] == 3
    # A crash after step 4 was logged but before it was saved: the resume redoes step 4.
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(run_dir / "tensorboard")) as lost:
        lost.add_scalar("train/loss", 99.0, 4)
    assert _foreground(run.train_config(), run.config()["data"], run_dir, resume=True, log_to=["tensorboard"]) == 0
    got = _scalars(run_dir / "tensorboard")["train/loss"]
    assert [s for s, _ in got] == [r["step"] for r in run.metrics("train")] == [1, 2, 3, 4]
    assert got[-1][1] == pytest.approx(run.metrics("train")[-1]["train_loss"], rel=1e-6) != 99.0


@pytest.fixture
def no_tensorboard(monkeypatch):
    real_import = builtins.__import__

    def without_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith(("tensorboard.", "torch.utils.tensorboard")):
            raise ModuleNotFoundError(f"No module named {name!r}", name="tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorboard)


def test_missing_tensorboard_names_the_extra_before_making_a_run(no_tensorboard, tiny_dataset, tmp_path, capsys):
    run_dir = tmp_path / "none"
    for detach in ([], ["--detach"]):
        assert main(["train", "--data", str(tiny_dataset), "--run", str(run_dir), "--log-to", "tensorboard",
                     *detach, *TRAIN]) != 0
        err = capsys.readouterr().err
        assert "pip install 'ocrtrain[tracking]'" in err and "tensorboard" in err
        assert not run_dir.exists()


def _assert_logged_as_metrics(run_dir, train_steps, val_steps, val_sets=("val", "general")) -> None:
    """RUN/tensorboard holds exactly the run's metrics.jsonl rows (steps and values)."""
    scalars = _scalars(run_dir / "tensorboard")
    run = Run(run_dir)
    train = run.metrics("train")
    assert [s for s, _ in scalars["train/loss"]] == [r["step"] for r in train] == train_steps
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([r["train_loss"] for r in train], rel=1e-6)
    for val_set in val_sets:
        rows = [r for r in run.metrics("val") if r["val_set"] == val_set]
        got = scalars[f"cer/{val_set}"]
        assert [s for s, _ in got] == [r["step"] for r in rows] == val_steps, val_set
        assert [v for _, v in got] == pytest.approx([r["cer"] for r in rows], rel=1e-6)


def test_detached_job_logs_to_tensorboard(tensorboard, tiny_dataset, tmp_path, capsys):
    run_dir = tmp_path / "detached"
    assert main(["train", "--data", str(tiny_dataset), "--run", str(run_dir), "--log-to", "tensorboard", "--detach",
                 *TRAIN]) == 0, capsys.readouterr()
    assert json.loads((run_dir / "config.json").read_text())["log_to"] == ["tensorboard"]
    st = Run(run_dir).wait(timeout=400)
    assert st["state"] == "finished", (st, Run(run_dir).log_tail())
    _assert_logged_as_metrics(run_dir, [1, 2, 3], [0, 2, 3])


def _canceled_at_3_of_4(tiny_dataset, run_dir) -> Run:
    """A run without experiment logging, canceled after step 3 of 4 (last.pt holds step 3)."""
    from ocrtrain.datamix import DataSpec
    from ocrtrain.train import TrainConfig, TrainStep, fit

    config = TrainConfig(max_steps=4, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
                         freeze_feature_extractor=True, device="cpu", baseline=False, save_minutes=0)
    stop = threading.Event()

    def stop_after_3(event):
        if isinstance(event, TrainStep) and event.step == 3:
            stop.set()
    fit(config, DataSpec.parse([str(tiny_dataset)], []), run_dir, callback=stop_after_3, stop_event=stop)
    run = Run(run_dir)
    assert run.status()["state"] == "canceled" and run.status()["step"] == 3
    return run


def test_resume_with_log_to_starts_logging_with_the_earlier_steps(tensorboard, tiny_dataset, tmp_path, capsys):
    run_dir = tmp_path / "later"
    _canceled_at_3_of_4(tiny_dataset, run_dir)
    assert not (run_dir / "tensorboard").exists()
    assert main(["resume", str(run_dir), "--log-to", "tensorboard"]) == 0, capsys.readouterr()
    assert json.loads((run_dir / "config.json").read_text())["log_to"] == ["tensorboard"]
    # Steps 1-3 and the step-2 validation come from metrics.jsonl, step 4 from the resumed training
    # (no step-0 origin: baseline=False).
    _assert_logged_as_metrics(run_dir, [1, 2, 3, 4], [2, 4])


def test_detached_resume_with_log_to_logs_in_the_job(tensorboard, tiny_dataset, tmp_path, capsys):
    run_dir = tmp_path / "later-job"
    _canceled_at_3_of_4(tiny_dataset, run_dir)
    assert main(["resume", str(run_dir), "--detach", "--log-to", "tensorboard"]) == 0, capsys.readouterr()
    assert json.loads((run_dir / "config.json").read_text())["log_to"] == ["tensorboard"]
    st = Run(run_dir).wait(timeout=400)
    assert st["state"] == "finished", (st, Run(run_dir).log_tail())
    _assert_logged_as_metrics(run_dir, [1, 2, 3, 4], [2, 4])


def test_a_recorded_backend_whose_package_is_gone_leaves_logging_off_with_a_warning(no_tensorboard, tmp_path):
    from ocrtrain.tracking import CONFIG_KEY, open_loggers

    run_dir = tmp_path / "gone"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({CONFIG_KEY: ["tensorboard"]}))
    notes = []
    assert open_loggers(run_dir, notes.append) == []
    assert len(notes) == 1 and notes[0].level == "warning" and "ocrtrain[tracking]" in notes[0].text


def test_resume_log_to_without_the_package_changes_nothing(no_tensorboard, tiny_dataset, tmp_path, capsys):
    from ocrtrain.runfolder import read_config
    from ocrtrain.tracking import record_backends

    run_dir = tmp_path / "rec"
    from ocrtrain.datamix import DataSpec
    from ocrtrain.train import TrainConfig, prepare_run

    prepare_run(TrainConfig(max_steps=2, device="cpu"), DataSpec.parse([str(tiny_dataset)], []), run_dir)
    before = read_config(run_dir)
    assert main(["resume", str(run_dir), "--log-to", "tensorboard"]) != 0
    assert "ocrtrain[tracking]" in capsys.readouterr().err
    with pytest.raises(Exception, match="tracking"):
        record_backends(run_dir, ["tensorboard"])
    assert read_config(run_dir) == before


def test_train_tab_checkbox_makes_the_job_log_to_tensorboard(tensorboard, tiny_dataset, tmp_path, monkeypatch):
    import shutil

    pytest.importorskip("ipywidgets")
    from ocrtrain.workbench import TrainPanel, Workspace

    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path))
    shutil.copytree(tiny_dataset, tmp_path / "datasets" / "tiny")
    workspace = Workspace(tmp_path)
    values = {"max_steps": 2, "warmup_steps": 0, "batch_size": 4, "device": "cpu", "val_interval": 2,
              "val_limit": 4, "workers": 0, "freeze_feature_extractor": True}
    runs = []
    for tick in (False, True):
        panel = TrainPanel(workspace)
        assert panel.log_tensorboard.value is False  # off by default
        panel.data.refresh(select=str(workspace.datasets_dir / "tiny"))
        for name, value in values.items():
            (panel.form if name in panel.form.field_names else panel.advanced).widget_for(name).value = value
        panel.log_tensorboard.value = tick
        panel.run_name.value = f"tb-{tick}"
        panel.launch_button.click()
        assert panel.run, panel.status.text
        runs.append(Run(panel.run))
    for run in runs:
        st = run.wait(timeout=400)
        assert st["state"] == "finished", (st, run.log_tail())
    plain, logged = runs
    assert not (plain.path / "tensorboard").exists() and "log_to" not in plain.config()
    assert logged.config()["log_to"] == ["tensorboard"]
    _assert_logged_as_metrics(logged.path, [1, 2], [0, 2], val_sets=("val",))
