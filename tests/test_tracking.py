"""Optional experiment logging: `ocrtrain train --log-to tensorboard` on a tiny real run, read back
with TensorBoard's own EventAccumulator."""
from __future__ import annotations

import builtins

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


def test_missing_tensorboard_names_the_extra_before_making_a_run(tiny_dataset, tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def without_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith(("tensorboard.", "torch.utils.tensorboard")):
            raise ModuleNotFoundError(f"No module named {name!r}", name="tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorboard)
    run_dir = tmp_path / "none"
    assert main(["train", "--data", str(tiny_dataset), "--run", str(run_dir), "--log-to", "tensorboard",
                 *TRAIN]) != 0
    err = capsys.readouterr().err
    assert "pip install 'ocrtrain[tracking]'" in err and "tensorboard" in err
    assert not run_dir.exists()


def test_detach_refuses_log_to(tiny_dataset, capsys):
    assert main(["train", "--data", str(tiny_dataset), "--log-to", "tensorboard", "--detach", *TRAIN]) != 0
    assert "foreground" in capsys.readouterr().err
