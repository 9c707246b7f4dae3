"""Model families: registry, the easyocr-crnn family equal to the code it wraps, checkpoints record families."""
from __future__ import annotations

import pytest
import torch

from conftest import draw_line
from ocrtrain.audit import ctc_steps
from ocrtrain.charset import Charset
from ocrtrain.errors import ConfigError, ModelError
from ocrtrain.families import DEFAULT_FAMILY, family_names, family_of_model, get_family, register_family
from ocrtrain.families.crnn import CrnnFamily
from ocrtrain.inference import custom_mean
from ocrtrain.model import ModelConfig, Recognizer, init_weights
from ocrtrain.preprocess import batch_tensor, resize_to_height, to_gray

SMALL = {"output_channel": 64, "hidden_size": 32}


def test_registry_names_aliases_and_errors():
    assert "easyocr-crnn" in family_names() and DEFAULT_FAMILY == "easyocr-crnn"
    assert get_family("english_g2") is get_family("easyocr-crnn") is get_family("crnn")
    with pytest.raises(ConfigError, match=r"unknown model family 'easyocr-crn': did you mean 'easyocr-crnn'"):
        get_family("easyocr-crn")
    with pytest.raises(ConfigError, match="unknown model family 'zzz'"):
        get_family("zzz")
    with pytest.raises(ConfigError, match="already registered"):
        register_family(CrnnFamily())
    with pytest.raises(ConfigError, match="not a named ModelFamily"):
        register_family(object())
    with pytest.raises(ModelError, match="not a model of any registered family"):
        family_of_model(torch.nn.Linear(2, 2))
    assert family_of_model(torch.nn.DataParallel(Recognizer(ModelConfig(**SMALL), 5))).name == "easyocr-crnn"


def _crnn_batch():
    family = get_family("easyocr-crnn")
    charset = Charset("abcdefKklmt ")
    options = {**family.default_options(), **SMALL}
    model = init_weights(family.build(options, family.num_classes(charset)), seed=0).eval()
    labels = ["Kaffe", "te", "melk"]
    grays = [to_gray(draw_line(t, height=h)) for t, h in zip(labels, (32, 40, 28))]
    return family, charset, options, model, labels, grays


def test_crnn_family_equals_recognizer_ctc_loss_and_decode():
    family, charset, options, model, labels, grays = _crnn_batch()
    assert isinstance(model, Recognizer) and family.img_height(options) == 64 and family.input_channels(options) == 1
    images = family.batch_tensor(grays, options)
    assert torch.equal(images, batch_tensor([resize_to_height(g, 64) for g in grays], 64))
    targets = [family.encode(charset, t) for t in labels]
    assert targets[1] == charset.encode("te")
    outputs = family.train_forward(model, images, targets)
    logits = model(images)
    assert torch.equal(outputs, logits)
    log_probs = logits.float().log_softmax(2).permute(1, 0, 2)
    flat = torch.tensor([c for t in targets for c in t])
    lengths = torch.tensor([len(t) for t in targets])
    inputs = torch.full((3,), log_probs.shape[0], dtype=torch.long)
    for each, reduction in ((False, "mean"), (True, "none")):
        expected = torch.nn.CTCLoss(blank=0, reduction=reduction, zero_infinity=True)(log_probs, flat, inputs, lengths)
        assert torch.equal(family.loss(outputs, targets, each=each), expected)
    preds = family.decode(family.infer_forward(model, images), charset)
    probs = torch.softmax(logits.detach(), 2)
    best = probs.argmax(2)
    for pred, steps, idx in zip(preds, probs.max(2).values, best):
        assert pred.text == charset.decode_ctc(idx.tolist())
        kept = steps[idx != 0].numpy()
        assert pred.confidence == pytest.approx(custom_mean(kept) if len(kept) else 0.0, rel=1e-5)


def test_crnn_label_rule_is_training_and_audit_rule():
    family = get_family("easyocr-crnn")
    options = family.default_options()
    # A 70x32 line is padded to ceil(70/32) * 64 = 192 px: 47 steps (the old audit counted 34).
    assert ctc_steps(70, 32) == 47
    assert family.check_label("a" * 24, (32, 70), options) is None  # 24 + 23 blanks = 47 steps
    reason = family.check_label("a" * 25, (32, 70), options)
    assert reason.startswith("label needs 49 output steps but the 70x32 image gives only 47 at height 64")
    assert "CTC steps" in reason
    assert family.check_label("abc", 192.0, options) is None
    with pytest.raises(ConfigError, match="outside the charset"):
        family.encode(Charset("ab"), "abc")


def test_grow_head_keeps_rows_and_checkpoint_records_family(tmp_path):
    from ocrtrain.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

    family, charset, options, model, _, _ = _crnn_batch()
    grown_charset = charset.extended("åø")
    family.grow_head(model, charset, grown_charset)
    assert family.head_size(model) == family.num_classes(grown_charset)
    path = save_checkpoint(tmp_path / "c.pt", model, grown_charset, options, 3, {})
    raw = torch.load(path, weights_only=True)
    assert raw["family"] == "easyocr-crnn" and raw["model_config"] == ModelConfig(**SMALL).to_dict()
    back, back_charset, config = model_from_checkpoint(load_checkpoint(path))
    assert isinstance(back, Recognizer) and config == ModelConfig(**SMALL) and back_charset == grown_charset
    del raw["family"]  # written before families existed
    torch.save(raw, tmp_path / "old.pt")
    assert isinstance(model_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))[0], Recognizer)
    raw["family"] = "nope"
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="unknown model family 'nope'"):
        load_checkpoint(tmp_path / "bad.pt")
