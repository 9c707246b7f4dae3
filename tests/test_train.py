"""Training loop, config and templates: tiny real runs on CPU from english_g2 (a few steps each)."""
from __future__ import annotations

import csv
import errno
import json
import threading

import pytest
import torch

from conftest import draw_line, png_bytes
from ocrtrain.augment import AugmentConfig
from ocrtrain.cli import main
from ocrtrain.dataset import DatasetWriter, SplitConfig
from ocrtrain.errors import ConfigError, DatasetError, ModelError, RunError
from ocrtrain.events import Message
from ocrtrain.runs import Run, resume
from ocrtrain.train import (TrainConfig, effective_warmup, TrainStep, Validation, fit, list_templates, load_template,
                            save_template)

# Frozen VGG keeps each CPU step well under a second; the head and BiLSTMs still train.
FAST = dict(max_steps=4, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
            freeze_feature_extractor=True)


def _losses(run: Run) -> list:
    return [(r["step"], r["train_loss"]) for r in run.metrics("train")]


# ---------------------------------------------------------------- config and templates

def test_config_rejects_unknown_and_inconsistent_values():
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        TrainConfig.from_dict({"max_step": 3})
    with pytest.raises(ConfigError, match="unknown AugmentConfig key"):
        TrainConfig.from_dict({"augment": {"rotate": 2}})
    # A warm-up as long as the run is cut to a tenth of it (so `--max-steps 20` works with defaults).
    assert effective_warmup(TrainConfig(max_steps=10, warmup_steps=10).warmup_steps, 10) == 1
    assert effective_warmup(20, 300) == 20
    with pytest.raises(ConfigError, match="set lr 1.0"):
        TrainConfig(optimizer="adadelta", lr=3e-4)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        TrainConfig(amp="bf16", device="cpu")
    with pytest.raises(ConfigError, match="auto, cpu, cuda, cuda:N"):
        TrainConfig(device="gpu0")
    with pytest.raises(ConfigError, match="not one of"):
        TrainConfig(charset_mode="grow")
    with pytest.raises(ConfigError, match="augment.rotation"):
        AugmentConfig(rotation=45)
    cfg = TrainConfig.from_dict({"augment": {"blur": 0}, "lr": "1e-4"})
    assert cfg.augment.blur == 0 and cfg.lr == 1e-4 and cfg.augment.noise == AugmentConfig().noise


def test_templates_roundtrip_and_name_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path / "home"))
    shipped = list_templates()
    assert {"default", "quick-cpu"} <= set(shipped)
    for name in shipped:
        assert isinstance(load_template(name), TrainConfig)
    assert load_template("default") == TrainConfig()
    cfg = TrainConfig(lr=1e-4, batch_size=8, augment=AugmentConfig(probability=0.0))
    path = save_template(cfg, "receipts_v2.cpu")
    assert path.parent == tmp_path / "home" / "templates"
    assert load_template("receipts_v2.cpu") == cfg
    assert "receipts_v2.cpu" in list_templates()
    with pytest.raises(ConfigError, match="already exists"):
        save_template(cfg, "receipts_v2.cpu")
    save_template(cfg.replace(lr=2e-4), "receipts_v2.cpu", overwrite=True)
    assert load_template("receipts_v2.cpu").lr == 2e-4
    for bad in ("../evil", "a/b", "", "..", ".hidden", "with space", "ø-template"):
        with pytest.raises(ConfigError, match="not allowed"):
            save_template(cfg, bad)
    with pytest.raises(ConfigError, match="shipped template"):
        save_template(cfg, "default")
    with pytest.raises(ConfigError, match="no template named 'nope'"):
        load_template("nope")
    (tmp_path / "home" / "templates" / "broken.yaml").write_text("lr: -1\n")
    with pytest.raises(ConfigError, match="template 'broken'.*lr must be positive"):
        load_template("broken")


def test_templates_saved_by_older_versions_are_still_found(tmp_path, monkeypatch):
    monkeypatch.delenv("OCRTRAIN_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # old default: ~/.ocrtrain/templates; new: ~/ocrtrain/templates
    (tmp_path / ".ocrtrain" / "templates").mkdir(parents=True)
    (tmp_path / ".ocrtrain" / "templates" / "old-one.yaml").write_text("lr: 0.0002\n")
    assert load_template("old-one").lr == 2e-4 and "old-one" in list_templates()
    assert save_template(TrainConfig(), "new-one").parent == tmp_path / "ocrtrain" / "templates"


# ---------------------------------------------------------------- a full foreground run

def test_cli_train_foreground_makes_consistent_run_folder(tiny_dataset, tmp_path, capsys):
    from ocrtrain.checkpoint import load_checkpoint
    from ocrtrain.evaluate import evaluate
    from ocrtrain.runs import list_runs

    run_dir = tmp_path / "runs" / "cli"
    code = main(["train", "--data", str(tiny_dataset), "--run", str(run_dir), "--max-steps", "4",
                 "--val-interval", "2", "--batch-size", "4", "--val-limit", "4", "--workers", "0",
                 "--warmup-steps", "1", "--freeze-feature-extractor", "--seed", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "val @ 2" in out and "finished at step 4/4" in out
    run = Run(run_dir)
    st = run.status()
    assert st["state"] == "finished" and st["step"] == st["max_steps"] == 4 and st["device"] == "cpu"
    assert json.loads((run_dir / "config.json").read_text())["config"]["seed"] == 3
    assert [r["step"] for r in run.metrics("train")] == [1, 2, 3, 4]
    rows = run.metrics("val")
    # step 0 = the origin; every validation also scores the built-in general set (forgetting guard)
    assert [(r["step"], r["val_set"]) for r in rows] == [(s, v) for s in (0, 2, 4) for v in ("val", "general")]
    assert rows[0]["baseline"] and st["baseline"]["general"]["accuracy_ws"] is not None
    vals = [r for r in rows if r["val_set"] == "val" and r["step"]]
    assert all(0 <= r["cer"] and 0 <= r["accuracy"] <= 1 and r["val_loss"] is not None for r in vals)
    versions = run.versions()
    assert [v["file"] for v in versions] == ["step-00000002.pt", "step-00000004.pt"]
    best = run.best_version()
    guarded = [r for r in vals if r["guard_ok"]]
    if guarded:
        assert best["metrics"]["cer"] == min(r["cer"] for r in guarded)
    ckpt = load_checkpoint(run.checkpoint_path("best"))
    assert ckpt["step"] == best["step"]
    for ch in "æøåÆØ":  # the head grew for the data's Norwegian letters
        assert ch in ckpt["charset"]
    assert len(ckpt["charset"]) > 96
    last = load_checkpoint(run.checkpoint_path("last"))
    assert last["step"] == 4 and "optimizer" in last and "rng" in last
    assert run.checkpoint_path(2).name == "step-00000002.pt"
    with pytest.raises(RunError, match="does not exist|not found"):
        run.checkpoint_path("step-3")
    assert "finished at step 4/4" in run.log_tail(5)
    report = evaluate(f"run:{run_dir}", tiny_dataset, limit=4)
    assert report.metrics["n"] == 4
    [row] = list_runs(tmp_path / "runs")
    assert row["name"] == "cli" and row["state"] == "finished" and row["progress"] == 1.0
    assert row["best_cer"] == best["metrics"]["cer"]
    # The same folder cannot be trained into twice.
    assert main(["train", "--data", str(tiny_dataset), "--run", str(run_dir), "--max-steps", "2",
                 "--warmup-steps", "0"]) == 1
    assert "already holds a run" in capsys.readouterr().err


# ---------------------------------------------------------------- determinism and resume

def test_same_seed_same_metrics_and_exact_resume(tiny_dataset, tmp_path):
    cfg = TrainConfig(**{**FAST, "max_steps": 6, "val_interval": 3}, seed=7,
                      augment=AugmentConfig(probability=0.8))
    a = fit(cfg, tiny_dataset, tmp_path / "a")
    b = fit(cfg.replace(workers=1), tiny_dataset, tmp_path / "b")  # a worker process changes nothing
    assert _losses(a) == _losses(b)
    assert [r["val_loss"] for r in a.metrics("val")] == [r["val_loss"] for r in b.metrics("val")]
    other = fit(cfg.replace(seed=8), tiny_dataset, tmp_path / "other")
    assert _losses(other) != _losses(a)

    # Stop after step 4 (between validations), then resume: the losses continue exactly.
    stop = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, TrainStep) and event.step == 4:
            stop.set()

    c = fit(cfg, tiny_dataset, tmp_path / "c", callback=on_event, stop_event=stop)
    assert c.status()["state"] == "canceled" and c.status()["step"] == 4
    assert c.checkpoint_path("last").is_file()
    assert any(isinstance(e, Validation) and e.step == 3 for e in events)
    c = resume(tmp_path / "c")
    assert c.status()["state"] == "finished" and c.status()["step"] == 6
    assert _losses(c) == _losses(a)
    assert [r["cer"] for r in c.metrics("val")] == [r["cer"] for r in a.metrics("val")]
    with pytest.raises(RunError, match="already finished"):
        resume(tmp_path / "c")


# ---------------------------------------------------------------- faults

def test_nan_loss_steps_are_skipped_and_counted(tiny_dataset, tmp_path):
    events = []
    run = fit(TrainConfig(**{**FAST, "lr": 1e30, "warmup_steps": 0, "schedule": "constant"}),
              tiny_dataset, tmp_path / "nan", callback=events.append)
    st = run.status()
    assert st["state"] == "finished" and st["step"] == 4
    skipped = [r for r in run.metrics("train") if r["skipped"]]
    assert st["nonfinite_skipped"] == len(skipped) >= 1
    assert all(r["train_loss"] is None for r in skipped)
    assert any(isinstance(e, Message) and "not finite" in e.text for e in events)
    assert "step skipped" in run.log_tail(50)


def _write_dataset(path, train, val):
    with DatasetWriter(path, SplitConfig(val_fraction=0, test_fraction=0), source={"kind": "test"}) as w:
        for split, items in (("train", train), ("val", val)):
            for drawn, label in items:
                w.add(png_bytes(draw_line(drawn)), label, split=split)
    return path


def test_keep_mode_reports_out_of_charset_and_too_long_labels(tmp_path):
    long_label = "Melk 12,50 " * 8
    data = _write_dataset(tmp_path / "mixed",
                          train=[("Melk 12,50", "Melk 12,50"), ("Ost 3,20", "Ost 3,20"), ("Brød 9,90", "Brød 9,90"),
                                 ("Egg 1,00", "Egg 1,00"), ("Melk", long_label), ("Kaffe 5,00", "Kaffe 5,00")],
                          val=[("Smør 4,50", "Smør 4,50"), ("Egg 2,00", "Egg 2,00")])
    events = []
    run = fit(TrainConfig(**{**FAST, "max_steps": 2, "charset_mode": "keep"}), data, tmp_path / "keep",
              callback=events.append)
    assert run.status()["state"] == "finished"
    with open(tmp_path / "keep" / "rejected.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_label = {r["label"]: r for r in rows}
    assert set(by_label) == {"Brød 9,90", "Smør 4,50", long_label}
    assert by_label["Brød 9,90"]["split"] == "train" and "'ø'" in by_label["Brød 9,90"]["reason"]
    assert "charset_mode extend" in by_label["Smør 4,50"]["reason"] and by_label["Smør 4,50"]["split"] == "val"
    assert "output steps" in by_label[long_label]["reason"]
    assert run.status()["rejected"] == 3 and run.status()["train_samples"] == 4
    assert any(isinstance(e, Message) and e.level == "warning" and "3 label(s)" in e.text for e in events)
    assert "rejected.csv" in run.log_tail(50)


def test_dataset_and_origin_errors_fail_before_training(tmp_path, tiny_dataset):
    no_val = _write_dataset(tmp_path / "noval", train=[("Ost 1", "Ost 1"), ("Egg 2", "Egg 2")], val=[])
    with pytest.raises(DatasetError, match="val.*is empty"):
        fit(TrainConfig(**FAST), no_val, tmp_path / "r1")
    st = Run(tmp_path / "r1").status()
    assert st["state"] == "failed" and "is empty" in st["error"]
    assert not (tmp_path / "r1" / "metrics.jsonl").exists() or not Run(tmp_path / "r1").metrics()
    one = _write_dataset(tmp_path / "one", train=[("Ost 1", "Ost 1")], val=[("Egg 2", "Egg 2")])
    with pytest.raises(DatasetError, match="at least 2"):
        fit(TrainConfig(**FAST), one, tmp_path / "r2")
    with pytest.raises(ModelError):
        fit(TrainConfig(**{**FAST, "origin": f"run:{tmp_path / 'missing'}"}), tiny_dataset, tmp_path / "r3")
    assert Run(tmp_path / "r3").status()["state"] == "failed"


def test_out_of_memory_halves_the_batch(tiny_dataset, tmp_path, monkeypatch):
    import ocrtrain.trainer as trainer

    real = trainer.forward

    def tight_memory(task, net, batch, device):
        if net.training and len(batch["targets"]) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(task, net, batch, device)

    monkeypatch.setattr(trainer, "forward", tight_memory)
    events = []
    run = fit(TrainConfig(**FAST), tiny_dataset, tmp_path / "oom", callback=events.append)
    st = run.status()
    assert st["state"] == "finished" and st["oom_halvings"] == 1 and st["step"] == 4
    assert {r["batch_size"] for r in run.metrics("train")} == {2}
    assert any(isinstance(e, Message) and "halved to 2" in e.text for e in events)


def test_disk_full_on_save_fails_cleanly_and_keeps_earlier_files(tiny_dataset, tmp_path, monkeypatch):
    import ocrtrain.checkpoint as checkpoint
    from ocrtrain.fsutil import disk_full_error

    real = checkpoint.save_checkpoint
    calls = []

    def filling_disk(path, *args, **kwargs):
        calls.append(path)
        if len(calls) >= 3:  # step-2.pt and last.pt fit, then the disk is full
            # what fsutil's atomic writers raise on a real full disk
            raise disk_full_error(path, OSError(errno.ENOSPC, "No space left on device", str(path)))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_checkpoint", filling_disk)
    with pytest.raises(RunError, match="disk is full"):
        fit(TrainConfig(**FAST), tiny_dataset, tmp_path / "full")
    run = Run(tmp_path / "full")
    st = run.status()
    assert st["state"] == "failed" and "disk is full" in st["error"] and "resume" in st["error"]
    assert "run again" not in st["error"] and st["error"].count("ocrtrain resume") == 1  # one fix, not two
    assert checkpoint.load_checkpoint(run.checkpoint_path("last"))["step"] == 2
    assert checkpoint.load_checkpoint(run.checkpoint_path("best"))["step"] == 2
    assert [v["step"] for v in run.versions()] == [2]
    assert not list((tmp_path / "full" / "checkpoints").glob(".*tmp"))


def test_cli_config_precedence_template_file_options(tmp_path, monkeypatch):
    from ocrtrain.cli import build_parser
    from ocrtrain.cli.train import build_config

    monkeypatch.setenv("OCRTRAIN_HOME", str(tmp_path / "home"))
    save_template(TrainConfig(lr=1e-4, batch_size=8, augment=AugmentConfig(noise=2.0)), "mine")
    cfg_file = tmp_path / "over.yaml"
    cfg_file.write_text("batch_size: 12\naugment:\n  blur: 0.5\n")
    args = build_parser().parse_args(["train", "--data", "x", "--template", "mine", "--config", str(cfg_file),
                                      "--seed", "5", "--augment-probability", "0.25"])
    cfg = build_config(args)
    assert (cfg.lr, cfg.batch_size, cfg.seed) == (1e-4, 12, 5)
    assert (cfg.augment.noise, cfg.augment.blur, cfg.augment.probability) == (2.0, 0.5, 0.25)
    cfg_file.write_text("batch_sise: 12\n")
    with pytest.raises(ConfigError, match="over.yaml.*did you mean 'batch_size'"):
        build_config(args)


def test_crash_before_first_validation_resumes_from_time_based_save(tiny_dataset, tmp_path):
    """A run killed before its first validation continues from the time-based last.pt; no duplicated rows."""

    cfg = TrainConfig(**{**FAST, "max_steps": 6, "val_interval": 100, "save_minutes": 1e-6})

    def crash(event):
        if getattr(event, "step", 0) == 3:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, tiny_dataset, tmp_path / "early", callback=crash)
    run = Run(tmp_path / "early")
    assert run.status()["state"] == "failed" and not run.versions()
    assert run.checkpoint_path("last").is_file()  # saved by time, before any validation
    resumed = resume(tmp_path / "early")
    steps = [r["step"] for r in resumed.metrics("train")]
    assert resumed.status()["state"] == "finished" and steps == sorted(set(steps)) == list(range(1, 7))


def test_resume_without_any_checkpoint_starts_over_without_duplicate_rows(tiny_dataset, tmp_path):
    import threading

    cfg = TrainConfig(**{**FAST, "val_interval": 100, "save_minutes": 0})
    stop = threading.Event()
    fit(cfg, tiny_dataset, tmp_path / "lost", stop_event=stop,
        callback=lambda e: stop.set() if getattr(e, "step", 0) == 2 else None)
    (tmp_path / "lost" / "checkpoints" / "last.pt").unlink()  # as if killed before any save
    resumed = resume(tmp_path / "lost")
    assert [r["step"] for r in resumed.metrics("train")] == [1, 2, 3, 4]


def test_dataset_replaced_under_a_run_is_refused_at_resume(tiny_dataset, tmp_path):
    import shutil
    import threading

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    stop = threading.Event()
    fit(TrainConfig(**FAST), data, tmp_path / "swap", stop_event=stop,
        callback=lambda e: stop.set() if getattr(e, "step", 0) == 1 else None)
    shutil.rmtree(data)
    _write_dataset(data, train=[("Ost 1", "Ost 1"), ("Egg 2", "Egg 2")], val=[("Egg 2", "Egg 2")])
    with pytest.raises(RunError, match="changed since this run started"):
        resume(tmp_path / "swap")


def test_cpu_recipe_keeps_the_pretrained_features_on_cpu(tiny_dataset, tmp_path):
    import torch

    from ocrtrain.checkpoint import load_checkpoint
    from ocrtrain.origins import load_origin

    notes = []
    cfg = TrainConfig(**{**FAST, "freeze_feature_extractor": False, "max_steps": 2, "device": "cpu"})
    run = fit(cfg, tiny_dataset, tmp_path / "cpu", callback=lambda e: notes.append(getattr(e, "text", "")))
    origin = load_origin("english_g2").model.state_dict()
    trained = load_checkpoint(run.checkpoint_path("last"))["state_dict"]
    conv = [k for k in origin if k.startswith("FeatureExtraction") and k.endswith("weight")]
    assert conv and all(torch.equal(origin[k], trained[k]) for k in conv)
    assert not torch.equal(origin["SequenceModeling.0.rnn.weight_ih_l0"], trained["SequenceModeling.0.rnn.weight_ih_l0"])
    assert any("CPU recipe" in n for n in notes)
