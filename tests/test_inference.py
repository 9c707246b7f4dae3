"""Predictor with the real english_g2 weights, compared line by line with the real easyocr.Reader."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import draw_line, sample_labels
from ocrtrain.charset import Charset
from ocrtrain.config import ConfigError
from ocrtrain.easyocr_interop import make_reader, read_lines
from ocrtrain.inference import Prediction, Predictor, custom_mean, decode_logits

READABLE = ["Melk 42,90", "TOTAL 1234,56", "Kaffe 59,90", "Egg 12 stk 39,90", "SUM NOK 99,90", "Bananer 2 kg"]


@pytest.fixture(scope="module")
def crops():
    # Receipt lines of several widths and heights (so several EasyOCR width buckets), a one-letter
    # line, a tall crop and a noisy one (low confidence: exercises the contrast retry).
    labels = sample_labels(10, seed=3) + READABLE[:2] + ["x", "Kvittering nr. 0042 Kasse 3"]
    images = [draw_line(t, height=h) for t, h in zip(labels, [32, 40, 28, 48] * 5)]
    images.append(draw_line("Øl", height=90, font_size=20))
    images.append(np.random.default_rng(0).integers(0, 256, (40, 260), dtype=np.uint8))
    return images


# On the CPU like the Reader these are compared with (the default device is auto: a GPU when torch sees one).
@pytest.fixture(scope="module")
def plain(crops):
    return Predictor.from_origin("english_g2", device="cpu").predict(crops)


@pytest.fixture(scope="module")
def compatible(crops):
    return Predictor.from_origin("english_g2", device="cpu", reader_compatible=True).predict(crops)


def test_english_g2_reads_drawn_receipt_lines():
    got = [p.text for p in Predictor.from_origin("english_g2").predict([draw_line(t) for t in READABLE])]
    assert got == READABLE


def test_predictions_equal_easyocr_reader(crops, compatible):
    theirs = read_lines(make_reader(None, "english_g2", quantize=False), crops)
    assert [p.text for p in compatible] == [p.text for p in theirs]
    assert max(abs(a.confidence - b.confidence) for a, b in zip(compatible, theirs)) < 1e-4


def test_quantized_predictions_equal_the_default_quantized_reader(crops):
    # Reader quantizes the recognizer (qint8) on CPU by default; quantize=True does the same, and
    # its per-line sequence layers make each line's reading independent of its batch-mates.
    from ocrtrain.model import Recognizer

    g2 = Predictor.from_origin("english_g2", device="cpu")
    ours = Predictor(g2.model, g2.charset, quantize=True, reader_compatible=True)
    assert isinstance(g2.model.SequenceModeling[0].rnn, torch.nn.LSTM)  # the given model is not touched
    assert isinstance(ours.model.SequenceModeling[0].rnn, torch.ao.nn.quantized.dynamic.LSTM)
    assert isinstance(ours.model, Recognizer)
    theirs = read_lines(make_reader(None, "english_g2"), crops)
    got = ours.predict(crops)
    assert [p.text for p in got] == [p.text for p in theirs]
    shuffled = Predictor(g2.model, g2.charset, quantize=True, reader_compatible=True, batch_size=4)
    assert [p.text for p in shuffled.predict(crops[::-1])] == [p.text for p in got[::-1]]


def test_quantize_needs_the_cpu():
    with pytest.raises(ConfigError, match="quantize=True needs device 'cpu'.*--device cpu"):
        Predictor.from_origin("english_g2", device="cuda", quantize=True)


def test_batching_keeps_input_order_and_results(crops, plain):
    order = list(np.random.default_rng(1).permutation(len(crops)))
    batched = Predictor.from_origin("english_g2", device="cpu", batch_size=3).predict([crops[i] for i in order])
    assert [batched[order.index(i)].text for i in range(len(crops))] == [p.text for p in plain]
    assert Predictor.from_origin("english_g2").predict([]) == []


def test_reader_compatible_retry_only_changes_low_confidence_lines(plain, compatible):
    retried = 0
    for a, b in zip(plain, compatible):
        if a.confidence >= 0.1:
            assert a == b
        else:
            retried += 1
            assert b.confidence >= a.confidence
    assert retried >= 1  # the noise crop


def test_decode_logits_greedy_and_confidence():
    cs = Charset("ab")
    big = 20.0
    path = [0, 1, 1, 0, 2]  # -> "ab"
    logits = torch.full((1, 5, 3), -big)
    for t, c in enumerate(path):
        logits[0, t, c] = big
    (pred,) = decode_logits(logits, cs)
    assert pred.text == "ab" and pred.confidence == pytest.approx(1.0, abs=1e-6)
    blank = torch.zeros(1, 4, 3)
    blank[..., 0] = big
    assert decode_logits(blank, cs) == [Prediction("", 0.0)]
    assert custom_mean(np.array([0.5, 0.5, 0.5, 0.5], np.float32)) == pytest.approx(0.0625 ** (2 / 2))


def test_predictor_checks_and_restores_training_mode():
    from ocrtrain.model import ModelConfig, Recognizer

    model = Recognizer(ModelConfig(output_channel=64, hidden_size=32), 3).train()
    with pytest.raises(ConfigError, match="4 .*with blank"):
        Predictor(model, Charset("abc"))
    Predictor(model, Charset("ab")).predict([draw_line("ab")])
    assert model.training
