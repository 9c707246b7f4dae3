"""frozen_rnn_layers: with frozen features, the first BiLSTM layers of the head stay fixed too."""
import pytest
import torch

from conftest import cached_recipe
from ocrtrain.errors import ConfigError
from ocrtrain.origins import load_origin
from ocrtrain.train import TrainConfig, fit

FAST = cached_recipe(lr=3e-3)


def _layers(spec):
    model = load_origin(spec, device="cpu").model
    return [torch.cat([p.detach().flatten() for p in layer.parameters()]) for layer in model.SequenceModeling]


def test_the_first_bilstm_layer_stays_fixed_and_the_second_trains(tiny_dataset, tmp_path):
    notes = []
    run = fit(TrainConfig(**FAST, frozen_rnn_layers=1), tiny_dataset, tmp_path / "run",
              callback=lambda e: notes.append(getattr(e, "text", "")))
    assert run.status()["state"] == "finished"
    assert any("first 1 BiLSTM layer(s) stay fixed" in n for n in notes)
    before, after = _layers("english_g2"), _layers(f"run:{run.path}@last")
    assert torch.equal(before[0], after[0])
    assert not torch.equal(before[1], after[1])


def test_frozen_rnn_layers_refuses_trained_features_and_a_head_with_nothing_left(tiny_dataset, tmp_path):
    cfg = {**FAST, "freeze_feature_extractor": False, "cpu_recipe": False}
    with pytest.raises(ConfigError, match="frozen features"):
        fit(TrainConfig(**cfg, frozen_rnn_layers=1), tiny_dataset, tmp_path / "a")
    with pytest.raises(ConfigError, match="leaves no BiLSTM layer"):
        fit(TrainConfig(**FAST, frozen_rnn_layers=2), tiny_dataset, tmp_path / "b")
