"""Several datasets per run: a weighted training mixture and named validation sets, each logged."""
import threading

import pytest

from conftest import draw_line, png_bytes, sample_labels, write_drawn_dataset
from ocrtrain.datamix import DataSpec, TrainSource, ValSource, batch_shares, is_replay
from ocrtrain.dataset import Dataset, DatasetWriter, SplitConfig
from ocrtrain.errors import ConfigError, DatasetError
from ocrtrain.runs import Run
from ocrtrain.tasks.lines import LineSet, plan_mixture
from ocrtrain.train import TrainConfig, fit

FAST = dict(max_steps=6, val_interval=3, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
            freeze_feature_extractor=True, device="cpu", guard="")


@pytest.fixture(scope="module")
def second_dataset(tmp_path_factory):
    labels = [label.upper() for label in sample_labels(16, seed=9)]
    return write_drawn_dataset(tmp_path_factory.mktemp("mix") / "upper", zip(labels, labels))


def test_batch_shares_follow_weights_whatever_the_sizes():
    assert batch_shares([1, 1], 8) == [4, 4]
    assert batch_shares([3, 1], 8) == [6, 2]
    assert batch_shares([1, 0], 8) == [8, 0]
    assert batch_shares([100, 1], 4) == [3, 1]  # every source with weight > 0 gets a line
    big = LineSet("a", list(range(40)), ["x"] * 40, [[1]] * 40, [10 + i for i in range(40)])
    small = LineSet("b", list(range(6)), ["y"] * 6, [[2]] * 6, [5] * 6)
    plan = plan_mixture([big, small], [1, 1], 8, seed=0, epoch=0)
    assert len(plan) == 10 and all(sum(p >= 40 for p in b) == 4 for b in plan)  # half of each batch
    assert sorted(p for b in plan for p in b if p < 40) == list(range(40))  # one pass over the first
    assert plan == plan_mixture([big, small], [1, 1], 8, seed=0, epoch=0)
    assert plan != plan_mixture([big, small], [1, 1], 8, seed=0, epoch=1)


def test_mixture_is_checked_up_front(tiny_dataset, tmp_path):
    with pytest.raises(ConfigError, match="sum to 0"):
        DataSpec((TrainSource(str(tiny_dataset), 0.0),)).check()
    with pytest.raises(DatasetError, match="does not exist"):
        fit(TrainConfig(**FAST), [str(tiny_dataset), str(tmp_path / "nope")], tmp_path / "r")
    no_train = tmp_path / "valonly"
    with DatasetWriter(no_train, SplitConfig(val_fraction=0.5, test_fraction=0.0)) as w:
        w.add(png_bytes(draw_line("Ost 1")), "Ost 1", split="val")
    with pytest.raises(DatasetError, match="empty train split"):
        fit(TrainConfig(**FAST), [str(tiny_dataset), str(no_train)], tmp_path / "r2")
    with pytest.raises(ConfigError, match="used twice"):
        DataSpec.parse([str(tiny_dataset)], [f"a={tiny_dataset}", f"a={tiny_dataset}"]).check()
    with pytest.raises(ConfigError, match="names validation set 'nope'"):
        fit(TrainConfig(**{**FAST, "select": "nope:cer"}), tiny_dataset, tmp_path / "r3")
    assert TrainSource.parse("data/x:0.5") == TrainSource("data/x", 0.5)
    assert ValSource.parse("data/gen/val") == ValSource("gen", "data/gen/val")


def test_two_datasets_two_val_sets_train_resume_and_log_both(tiny_dataset, second_dataset, tmp_path):
    spec = DataSpec.parse([f"{tiny_dataset}:1", f"{second_dataset}:1"],
                          [f"receipts={tiny_dataset}", f"upper={second_dataset / 'val'}"])
    cfg = TrainConfig(**{**FAST, "select": "upper:cer"})
    straight = fit(cfg, spec, tmp_path / "straight")
    assert straight.status()["state"] == "finished"
    vals = straight.metrics("val")
    assert [(r["step"], r["val_set"]) for r in vals] == [
        (s, v) for s in (0, 3, 6) for v in ("receipts", "upper", "general")]
    assert straight.status()["selected"] == "upper:cer"
    stop = threading.Event()
    stopper = lambda e: stop.set() if getattr(e, "step", 0) == 4 else None  # noqa: E731
    half = fit(cfg, spec, tmp_path / "runs" / "half", callback=stopper, stop_event=stop)
    assert half.status()["state"] == "canceled"
    resumed = fit(cfg, "ignored-on-resume", tmp_path / "runs" / "half", resume=True)
    assert resumed.status()["state"] == "finished"
    assert [(r["step"], r["train_loss"]) for r in resumed.metrics("train")] == \
        [(r["step"], r["train_loss"]) for r in straight.metrics("train")]
    assert [(r["val_set"], r["cer"]) for r in resumed.metrics("val")] == [(r["val_set"], r["cer"]) for r in vals]
    record = Run(tmp_path / "runs" / "half").config()
    weights = [s["weight"] for s in record["data_spec"]["train"]]
    assert weights[:2] == [1.0, 1.0]  # the user's sources keep their weights; replay (default 0.25) is added
    assert weights[2:] == [pytest.approx(2.0 / 3.0)] and is_replay(record["data_spec"]["train"][2]["path"])
    assert [v["name"] for v in record["data_spec"]["val"]] == ["receipts", "upper", "general"]
    pytest.importorskip("ipywidgets")
    from ocrtrain.workbench import MonitorPanel, Workspace

    monitor = MonitorPanel(Workspace(tmp_path))  # its runs folder is tmp_path/runs
    try:
        monitor.select(tmp_path / "runs" / "half")
        # One CER curve per validation set, each with steps 0, 3 (before the cancel) and 6 (after the resume).
        assert {name: monitor.points(f"CER · {name}") for name in ("receipts", "upper")} == {"receipts": 3, "upper": 3}
    finally:
        monitor.close()


def test_cli_trains_a_mixture_with_named_validation_sets(tiny_dataset, second_dataset, tmp_path, capsys):
    from ocrtrain.cli import main

    code = main(["train", "--data", f"{tiny_dataset}:3", "--data", f"{second_dataset}:1",
                 "--val", f"upper={second_dataset / 'val'}", "--val", f"receipts={tiny_dataset}",
                 "--run", str(tmp_path / "cli"), "--max-steps", "2", "--val-interval", "2", "--batch-size", "4",
                 "--warmup-steps", "0", "--freeze-feature-extractor", "--device", "cpu", "--val-limit", "3",
                 "--guard", ""])
    assert code == 0, capsys.readouterr()
    run = Run(tmp_path / "cli")
    assert [r["val_set"] for r in run.metrics("val") if r["step"]] == ["upper", "receipts", "general"]
    assert [s["weight"] for s in run.config()["data_spec"]["train"]][:2] == [3.0, 1.0]
    own = sum(Dataset(d).counts()["train"] for d in (tiny_dataset, second_dataset))
    assert run.status()["train_samples"] == own and run.status()["replay_samples"] > 0  # replay counted apart
    assert run.best_version()["metrics"]["val_set"] == "upper"  # the first set decides by default


def test_forgetting_guard_never_picks_a_checkpoint_that_forgot_the_general_set(tiny_dataset, tmp_path):
    """A rate that wrecks the model: the general set's accuracy falls, so no checkpoint becomes best."""
    from ocrtrain.events import Message

    wreck = dict(FAST, guard="general:accuracy_ws", lr=0.05, freeze_feature_extractor=False, cpu_recipe=False,
                 val_limit=12,
                 warmup_steps=0, schedule="constant", max_steps=4, val_interval=2)
    notes = []
    run = fit(TrainConfig(**wreck), tiny_dataset, tmp_path / "wreck",
              callback=lambda e: notes.append(e.text) if isinstance(e, Message) else None)
    rows = [r for r in run.metrics("val") if r["val_set"] == "general"]
    assert rows[0]["step"] == 0 and rows[0]["accuracy_ws"] > 0.5  # english_g2 reads the general set
    assert all(r["accuracy_ws"] < rows[0]["accuracy_ws"] - 0.01 for r in rows[1:])
    assert run.best_version() is None and any("forgetting guard" in n for n in notes)
    loose = fit(TrainConfig(**{**wreck, "guard_max_drop": 1.0}), tiny_dataset, tmp_path / "loose")
    assert loose.best_version() is not None


def test_a_mixed_batch_pads_each_source_to_its_own_width(tmp_path):
    """Wide lines of one source no longer pad the short lines of another: each source gets its own
    tensor (one forward pass each) when that saves pixels, and the loss stays the batch mean."""
    import torch

    from ocrtrain.families import get_family
    from ocrtrain.tasks.lines import LineBatches, padding_groups

    assert padding_groups([0, 0, 1], [4.0, 4.0, 4.0]) is None  # equal widths: one tensor
    assert padding_groups([0, 0, 0], [4.0, 9.0, 2.0]) is None  # one source
    assert padding_groups([0, 1, 0, 1], [3.0, 12.0, 3.0, 12.0]) == [[0, 2], [1, 3]]
    short, wide = tmp_path / "short", tmp_path / "wide"
    for out, words, seed in ((short, 1, 4), (wide, 6, 5)):
        with DatasetWriter(out, SplitConfig(val_fraction=0.0, test_fraction=0.0, split_seed=1),
                           source={"kind": "test-drawn"}) as writer:
            for i, label in enumerate(sample_labels(6, seed=seed)):
                text = " ".join([label] * words)
                writer.add(png_bytes(draw_line(text)), text, sample=f"{out.name}-{i}")
    from ocrtrain.lmdb_io import LmdbReader

    sets = []
    for out in (short, wide):
        reader = LmdbReader(out / "train")
        n = len(reader)
        sets.append(LineSet(out / "train", list(range(n)), [reader[i][1] for i in range(n)], [[1, 2]] * n, [0] * n))
    family = get_family("easyocr-crnn")
    options = family.default_options()
    source = LineBatches(sets, [[0, 6, 1, 7]], None, 0, 0, lambda grays: family.batch_tensor(grays, options))
    batch = source[0]
    assert isinstance(batch["images"], list) and [t.shape[0] for t in batch["images"]] == [2, 2]
    assert batch["sources"] == [0, 0, 1, 1] and batch["positions"] == [0, 1, 6, 7]
    assert batch["images"][0].shape[3] < batch["images"][1].shape[3] / 2  # the short lines stay short
    assert batch["labels"][2] == sets[1].labels[0]
    run = fit(TrainConfig(**{**FAST, "replay": 0, "general_val": 0}),
              DataSpec.parse([f"{short}:1", f"{wide}:1"], [f"short={short}/train"]), tmp_path / "run")
    assert run.status()["state"] == "finished"
    assert len(run.metrics("train")) == 6 and all(r["train_loss"] > 0 for r in run.metrics("train"))
