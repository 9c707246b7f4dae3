"""feature_precision int8: the training lines' frozen features from an 8-bit copy of the VGG."""
import json

import pytest
import torch

from conftest import cached_recipe
from ocrtrain.errors import ConfigError
from ocrtrain.families import get_family
from ocrtrain.origins import load_origin
from ocrtrain.tasks.feature_cache import FeatureCache
from ocrtrain.tasks.int8_features import int8_copy
from ocrtrain.train import TrainConfig, fit
from test_feature_cache import _lines

FAST = cached_recipe()


def test_the_int8_copy_gives_english_g2_features_close_to_the_float_ones_and_leaves_the_model_alone():
    model = load_origin("english_g2", device="cpu").model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, lines = _lines(["Melk 12,50", "Kjøttdeig 2 x 45,00 90,00", "TOTAL 135,50", "Ost"])
    fast = int8_copy(model, lines)
    assert any("quantized" in type(m).__module__ for m in fast.FeatureExtraction.modules())
    with torch.no_grad():
        for line in lines:
            exact, rounded = model.features(line), fast.features(line)
            assert exact.shape == rounded.shape
            assert 0 < float((exact - rounded).norm() / exact.norm()) < 0.08
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_cache_computes_training_lines_with_the_int8_copy_calibrated_on_the_given_positions():
    model, family = load_origin("english_g2", device="cpu").model.eval(), get_family("easyocr-crnn")
    _, lines = _lines(["Melk 12,50", "Ost 3,00", "Brød 29,90"])
    loaded = []

    def load(pos, variant):
        loaded.append((pos, variant))
        return lines[pos]

    exact = FeatureCache(2 ** 30, family).rows(model, [0, 1, 2], lines)
    rounded = FeatureCache(2 ** 30, family, load=load, int8_calibration=(0, 2)).rows(model, [0, 1, 2], lines)
    assert sorted(loaded) == [(0, 0), (2, 0)]
    for (a, pad_a), (b, pad_b) in zip(exact, rounded):
        assert a.shape == b.shape and not torch.equal(a, b)
        assert float((a - b).norm() / a.norm()) < 0.08
        assert torch.equal(pad_a, pad_b)  # padding columns stay float (checked against the 64-px images)


def test_a_run_with_int8_features_validates_the_float_model(tiny_dataset, tmp_path):
    notes, metrics = [], {}
    for precision in ("float32", "int8"):
        run = fit(TrainConfig(**FAST, feature_precision=precision), tiny_dataset, tmp_path / precision,
                  callback=lambda e: notes.append(getattr(e, "text", "")))
        assert run.status()["state"] == "finished"
        rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
        metrics[precision] = rows
    assert any("feature_precision int8" in n for n in notes)

    # Step 0 validates the origin: the same float model either way, so the same figures.
    zero = [[r for r in metrics[p] if r["kind"] == "val" and r["step"] == 0] for p in ("float32", "int8")]
    assert zero[0] and zero[0] == zero[1]
    # Training saw other features, so the losses of the steps differ.
    losses = [[r["train_loss"] for r in metrics[p] if r["kind"] == "train"] for p in ("float32", "int8")]
    assert len(losses[0]) == 3 and losses[0] != losses[1]


def test_int8_features_refuse_a_model_without_a_feature_extractor():
    with pytest.raises(ConfigError, match="FeatureExtraction"):
        int8_copy(torch.nn.Linear(2, 2), [torch.zeros(1, 2)])
