"""Forgetting levers: replay of general lines, distillation from the origin, L2-SP toward its weights."""
import threading
from pathlib import Path

import pytest
import torch

from ocrtrain.datamix import DataSpec, ensure_replay_sources, is_replay, with_replay
from ocrtrain.errors import ConfigError
from ocrtrain.events import Message
from ocrtrain.general import general_lines, replay_lines
from ocrtrain.lmdb_io import LmdbReader
from ocrtrain.runs import Run
from ocrtrain.train import TrainConfig, fit

FAST = dict(max_steps=6, val_interval=3, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
            freeze_feature_extractor=True, device="cpu", guard="", general_val=4, replay_lines=12)


def test_replay_lines_are_reproducible_and_never_the_general_validation_lines():
    lines = replay_lines(300, seed=1000)
    assert lines == replay_lines(300, seed=1000) and len(lines) == 300
    assert not set(lines) & set(general_lines(4000, 0))
    assert lines != replay_lines(300, seed=1001)
    with pytest.raises(ValueError, match="seed 0"):
        replay_lines(5, seed=0)


def test_replay_source_takes_its_share_of_every_batch(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("OCRTRAIN_CACHE", str(tmp_path / "cache"))
    spec = with_replay(DataSpec.parse([f"{tiny_dataset}:3"]), 0.25, 12)
    assert [s.weight for s in spec.train] == [3.0, 1.0] and is_replay(spec.train[1].path)
    assert not (tmp_path / "cache").exists()  # named, not rendered: a dashboard launch does not wait for it
    notes = []
    ensure_replay_sources(spec, lambda e: notes.append(e.text) if isinstance(e, Message) else None)
    assert any("rendering 12 general replay lines once" in n for n in notes)
    reader = LmdbReader(f"{spec.train[1].path}/train")
    labels = [reader[i][1] for i in range(len(reader))]
    assert labels == replay_lines(12, seed=1000)  # real trdg renderings of the replay lines
    assert with_replay(spec, 0.25, 12) == spec  # never added twice
    assert with_replay(spec, 0.0, 12) == spec


def test_a_run_renders_its_replay_lines_when_it_starts_and_again_if_the_cache_was_cleared(
        tiny_dataset, tmp_path, monkeypatch):
    import shutil

    from ocrtrain.train import prepare_run

    monkeypatch.setenv("OCRTRAIN_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(**{**FAST, "max_steps": 2, "val_interval": 2, "replay_lines": 10})
    assert cfg.replay == 0.25  # on by default
    prepare_run(cfg, tiny_dataset, tmp_path / "run")  # what launch() does in the dashboard's kernel
    replay = Run(tmp_path / "run").config()["data_spec"]["train"][1]["path"]
    assert is_replay(replay) and not Path(replay).exists()
    notes = []
    run = fit(cfg, tiny_dataset, tmp_path / "run", callback=lambda e: notes.append(getattr(e, "text", "")))
    assert run.status()["state"] == "finished" and run.status()["replay_samples"] == 10
    assert any(n.startswith("rendering 10 general replay lines once") for n in notes)
    shutil.rmtree(replay)  # the cache is regenerable: a resume renders the same lines again
    cfg2 = TrainConfig(**{**FAST, "max_steps": 4, "val_interval": 2, "replay_lines": 10})
    assert fit(cfg2, tiny_dataset, tmp_path / "run", resume=True).status()["state"] == "finished"
    assert len(LmdbReader(f"{replay}/train")) == 10


def test_lever_settings_are_checked():
    with pytest.raises(ConfigError, match="replay is 0"):
        TrainConfig(distill=1.0, replay=0)
    with pytest.raises(ConfigError, match="0..0.9"):
        TrainConfig(replay=0.95)
    with pytest.raises(ConfigError, match="scratch"):
        from ocrtrain.tasks.anchor import OriginAnchor
        OriginAnchor.build(TrainConfig(origin="scratch", l2sp=0.1), None, "cpu")


def test_replay_distill_and_l2sp_train_and_resume_exactly(tiny_dataset, tmp_path):
    cfg = TrainConfig(**FAST, replay=0.25, distill=1.0, l2sp=0.01)
    notes = []
    straight = fit(cfg, tiny_dataset, tmp_path / "straight",
                   callback=lambda e: notes.append(e.text) if isinstance(e, Message) else None)
    assert straight.status()["state"] == "finished"
    record = Run(tmp_path / "straight").config()
    assert [s["weight"] for s in record["data_spec"]["train"]] == [1.0, pytest.approx(1 / 3)]
    assert any("forgetting levers: replay: 25% of every batch" in n and "L2-SP" in n and "distillation" in n
               for n in notes)
    stop = threading.Event()
    stopper = lambda e: stop.set() if getattr(e, "step", 0) == 4 else None  # noqa: E731
    assert fit(cfg, tiny_dataset, tmp_path / "half", callback=stopper, stop_event=stop).status()["state"] == \
        "canceled"
    resumed = fit(cfg, "ignored-on-resume", tmp_path / "half", resume=True)
    assert [(r["step"], r["train_loss"]) for r in resumed.metrics("train")] == \
        [(r["step"], r["train_loss"]) for r in straight.metrics("train")]


def test_l2sp_and_distill_change_the_loss_and_pull_toward_the_origin(tiny_dataset, tmp_path):
    """Same seed, same batches: with the levers the trained weights stay closer to english_g2's."""
    from ocrtrain.checkpoint import load_checkpoint
    from ocrtrain.origins import load_origin

    base = dict(FAST, lr=3e-3, replay=0.25, max_steps=4, val_interval=4, feature_cache_mb=0)  # one path for both
    plain = fit(TrainConfig(**base), tiny_dataset, tmp_path / "plain")
    held = fit(TrainConfig(**base, l2sp=50.0, distill=1.0), tiny_dataset, tmp_path / "held")
    loss_plain = [r["train_loss"] for r in plain.metrics("train")]
    loss_held = [r["train_loss"] for r in held.metrics("train")]
    # Step 1 starts at the origin, where both extra terms are exactly 0; later steps differ.
    assert loss_held[0] == pytest.approx(loss_plain[0]) and loss_held[1:] != loss_plain[1:]
    origin = dict(load_origin("english_g2").model.named_parameters())

    def drift(run_dir):
        state = load_checkpoint(run_dir / "checkpoints" / "last.pt")["state_dict"]
        return sum(float((state[k].float() - p.detach().float()).pow(2).sum())
                   for k, p in origin.items() if k in state and state[k].shape == p.shape
                   and k.startswith("SequenceModeling"))

    assert drift(tmp_path / "held") < drift(tmp_path / "plain")
    assert torch.isfinite(torch.tensor(loss_held)).all()


def test_family_field_is_checked_and_reaches_the_origin(tiny_dataset, tmp_path):
    from ocrtrain.errors import OcrtrainError

    with pytest.raises(ConfigError, match="family 'nope' is not one of"):
        TrainConfig(family="nope")
    with pytest.raises(OcrtrainError, match="dtrb"):  # english_g2 is an easyocr-crnn model
        fit(TrainConfig(**{**FAST, "family": "dtrb", "max_steps": 1}), tiny_dataset, tmp_path / "mismatch")
    run = fit(TrainConfig(**{**FAST, "origin": "scratch", "family": "easyocr-crnn", "max_steps": 1,
                             "freeze_feature_extractor": False, "general_val": 0, "baseline": False}),
              tiny_dataset, tmp_path / "scratch")
    assert run.status()["state"] == "finished"


def test_train_last_convs_trains_only_the_last_convolutions(tiny_dataset, tmp_path):
    from ocrtrain.checkpoint import load_checkpoint
    from ocrtrain.origins import load_origin

    cfg = TrainConfig(**{**FAST, "freeze_feature_extractor": False, "cpu_recipe": True, "train_last_convs": 2,
                         "max_steps": 2, "val_interval": 2, "lr": 1e-3, "general_val": 0})
    notes = []
    fit(cfg, tiny_dataset, tmp_path / "thaw", callback=lambda e: notes.append(getattr(e, "text", "")))
    state = load_checkpoint(tmp_path / "thaw" / "checkpoints" / "last.pt")["state_dict"]
    origin = load_origin("english_g2").model.state_dict()
    changed = {k for k, v in origin.items() if k in state and state[k].shape == v.shape and not torch.equal(state[k], v)}
    convs = sorted({k.rsplit(".", 1)[0] for k in origin if k.startswith("FeatureExtraction") and k.endswith("weight")
                    and origin[k].dim() == 4}, key=lambda n: int(n.split(".")[2]))
    assert {k for k in changed if k.startswith("FeatureExtraction")} >= {f"{convs[-1]}.weight", f"{convs[-2]}.weight"}
    assert not any(k.startswith(convs[0]) or k.endswith("running_mean") for k in changed)  # early convs, BN stats
    assert any("except the last 2 convolution(s)" in n for n in notes)
    with pytest.raises(ConfigError, match="exceeds the 7 convolutions"):
        fit(TrainConfig(**{**FAST, "train_last_convs": 9}), tiny_dataset, tmp_path / "too-many")
