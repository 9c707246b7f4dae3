"""Recognizer: EasyOCR's architecture and parameter names, english_g2 strict load, freezing."""
from __future__ import annotations

import pytest
import torch

from ocrtrain.config import ConfigError
from ocrtrain.easyocr_interop import english_g2_path
from ocrtrain.errors import ModelError
from ocrtrain.model import (ModelConfig, Recognizer, check_state_dict, infer_architecture, init_weights,
                            load_weights, strip_module_prefix)


@pytest.fixture(scope="module")
def g2_state():
    return torch.load(english_g2_path(), map_location="cpu", weights_only=True)


def test_parameter_names_and_shapes_equal_easyocr_vgg_model():
    from easyocr.model.vgg_model import Model

    for out_ch, hidden, classes in [(256, 256, 97), (512, 256, 37), (128, 64, 10)]:
        ours = Recognizer(ModelConfig(output_channel=out_ch, hidden_size=hidden), classes).state_dict()
        theirs = Model(1, out_ch, hidden, classes).state_dict()
        assert list(ours) == list(theirs)
        assert all(ours[k].shape == theirs[k].shape for k in ours)


def test_english_g2_loads_strict_and_computes_what_easyocr_computes(g2_state):
    from easyocr.model.vgg_model import Model

    config, num_class = infer_architecture(strip_module_prefix(g2_state))
    assert config == ModelConfig() and num_class == 97
    ours = Recognizer(config, num_class).eval()
    load_weights(ours, g2_state)  # strict, module. stripped
    theirs = Model(1, 256, 256, 97).eval()
    theirs.load_state_dict(strip_module_prefix(g2_state), strict=True)
    x = torch.rand(3, 1, 64, 200) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x, None))
    for key, value in ours.state_dict().items():
        assert torch.equal(value, g2_state["module." + key])


def test_output_length_and_shape():
    model = Recognizer(ModelConfig(), 5).eval()
    with torch.no_grad():
        for width in (64, 128, 200, 448):
            out = model(torch.zeros(2, 1, 64, width))
            assert out.shape == (2, Recognizer.sequence_length(width), 5)
        # DTRB-style 32 px lines work with the same network.
        assert model(torch.zeros(1, 1, 32, 100)).shape == (1, Recognizer.sequence_length(100), 5)


def test_freeze_feature_extractor_stops_grads_and_batchnorm_drift():
    model = init_weights(Recognizer(ModelConfig(output_channel=64, hidden_size=32), 6), seed=1)
    model.freeze_feature_extractor(True)
    model.train()
    assert not model.FeatureExtraction.training and model.SequenceModeling.training
    assert all(not p.requires_grad for p in model.FeatureExtraction.parameters())
    assert all(p.requires_grad for p in model.Prediction.parameters())
    bn = model.FeatureExtraction.ConvNet[12]
    before = bn.running_mean.clone()
    model(torch.randn(2, 1, 64, 96)).sum().backward()
    assert torch.equal(bn.running_mean, before)
    assert model.FeatureExtraction.ConvNet[0].weight.grad is None
    model.freeze_feature_extractor(False)
    assert model.FeatureExtraction.training and all(p.requires_grad for p in model.FeatureExtraction.parameters())
    model(torch.randn(2, 1, 64, 96))
    assert not torch.equal(bn.running_mean, before)


def test_init_weights_is_reproducible_with_a_seed():
    a = init_weights(Recognizer(ModelConfig(output_channel=64, hidden_size=32), 6), seed=3).state_dict()
    b = init_weights(Recognizer(ModelConfig(output_channel=64, hidden_size=32), 6), seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.all(a["Prediction.bias"] == 0) and torch.all(a["FeatureExtraction.ConvNet.12.weight"] == 1)


def test_config_validation():
    with pytest.raises(ConfigError, match="grayscale"):
        ModelConfig(input_channel=3)
    with pytest.raises(ConfigError, match="multiple of 8"):
        ModelConfig(output_channel=100)
    with pytest.raises(ConfigError, match="at least 32"):
        ModelConfig(img_height=16)
    with pytest.raises(ConfigError, match="did you mean 'hidden_size'"):
        ModelConfig.from_dict({"hiden_size": 3})


def test_mismatched_state_dicts_are_described(g2_state):
    state = strip_module_prefix(g2_state)
    with pytest.raises(ModelError, match=r"Prediction.weight: file \(97, 256\) vs model \(98, 256\)"):
        load_weights(Recognizer(ModelConfig(), 98), state, "english_g2.pth")
    broken = dict(state)
    broken.pop("SequenceModeling.1.linear.bias")
    broken["extra.weight"] = torch.zeros(1)
    with pytest.raises(ModelError, match=r"1 missing \(e\.g\. SequenceModeling\.1\.linear\.bias\).*1 unexpected"):
        check_state_dict(ModelConfig(), 97, broken, "f.pth")


def test_foreign_architectures_are_named(g2_state):
    state = strip_module_prefix(g2_state)
    tps = {**state, "Transformation.LocalizationNetwork.conv.0.weight": torch.zeros(1)}
    with pytest.raises(ModelError, match="TPS transformation"):
        infer_architecture(tps)
    attn = {k: v for k, v in state.items() if not k.startswith("Prediction.")}
    attn["Prediction.attention_cell.i2h.weight"] = torch.zeros(2, 2)
    with pytest.raises(ModelError, match="attention"):
        infer_architecture(attn)
    colour = {**state, "FeatureExtraction.ConvNet.0.weight": torch.zeros(32, 3, 3, 3)}
    with pytest.raises(ModelError, match="3-channel"):
        infer_architecture(colour)
    with pytest.raises(ModelError, match="not a tensor state dict"):
        infer_architecture({"a": 1})
