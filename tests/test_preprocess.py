"""preprocess.prepare gives exactly the tensors EasyOCR builds and feeds its recognizer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import draw_line
from ocrtrain.errors import InputError
from ocrtrain.preprocess import (adjust_contrast_grey, batch_tensor, padded_width, prepare, resize_to_height,
                                 to_gray)


def _lines() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    drawn = [draw_line("Melk 42,90"), draw_line("x"), draw_line("Kjøttdeig 1234,56 TOTAL", height=50, font_size=30),
             draw_line("Øl", height=90, font_size=20), draw_line("SUM NOK 99,90", height=33, font_size=22)]
    noise = [rng.integers(0, 256, (40, 300), dtype=np.uint8),     # random: low confidence, contrast retry
             rng.integers(100, 141, (200, 30), dtype=np.uint8),    # tall and low contrast
             rng.integers(0, 256, (64, 192), dtype=np.uint8)]      # already model height, ratio exactly 3
    return [np.array(d) for d in drawn] + noise


def _easyocr_tensor(gray: np.ndarray, adjust_contrast: float) -> torch.Tensor:
    from easyocr.recognition import AlignCollate
    from easyocr.utils import get_image_list

    h, w = gray.shape
    crops, max_width = get_image_list([[0, w, 0, h]], [], gray, model_height=64)
    collate = AlignCollate(imgH=64, imgW=int(max_width), keep_ratio_with_pad=True, adjust_contrast=adjust_contrast)
    return collate([Image.fromarray(crops[0][1], "L")])


@pytest.mark.parametrize("adjust_contrast", [0.0, 0.5])
def test_prepare_equals_easyocr_functions(adjust_contrast):
    for gray in _lines():
        ours = prepare([gray], adjust_contrast=adjust_contrast)
        theirs = _easyocr_tensor(gray, adjust_contrast)
        assert ours.shape == theirs.shape, gray.shape
        assert torch.equal(ours, theirs), gray.shape


def test_prepare_equals_what_reader_recognize_feeds_the_model():
    """Capture the recognizer's real input inside easyocr.Reader.recognize (first and retry pass)."""
    from ocrtrain.easyocr_interop import make_reader

    reader = make_reader(None, "english_g2", quantize=False)
    seen: list[torch.Tensor] = []
    inner = reader.recognizer

    class Capture(torch.nn.Module):
        def forward(self, images, text):
            seen.append(images.clone())
            return inner(images, text)

    reader.recognizer = Capture()
    retried = 0
    for gray in _lines():
        seen.clear()
        reader.recognize(gray)
        assert torch.equal(seen[0], prepare([gray]))
        if len(seen) > 1:  # Reader's low-confidence second pass with adjust_contrast=0.5
            retried += 1
            assert torch.equal(seen[1], prepare([gray], adjust_contrast=0.5))
    assert retried >= 1  # the noise images exercise the contrast path
    # A PIL RGB image reads like the BGR array EasyOCR gets from OpenCV.
    rgb = Image.new("RGB", (120, 30), (200, 30, 40))
    seen.clear()
    reader.recognize(np.array(rgb)[:, :, ::-1].copy())
    assert torch.equal(seen[0], prepare([rgb]))


def test_batch_pads_to_the_widest_line_like_alignCollate():
    from easyocr.recognition import AlignCollate
    from easyocr.utils import get_image_list

    grays = _lines()[:4]
    widths = [padded_width(g.shape) for g in grays]
    ours = prepare(grays)
    assert ours.shape == (4, 1, 64, max(widths))
    crops = [get_image_list([[0, g.shape[1], 0, g.shape[0]]], [], g)[0][0][1] for g in grays]
    theirs = AlignCollate(imgH=64, imgW=max(widths), keep_ratio_with_pad=True)([Image.fromarray(c, "L") for c in crops])
    assert torch.equal(ours, theirs)


def test_resize_quirks_are_reproduced():
    tall = np.zeros((200, 30), np.uint8)
    assert resize_to_height(tall).shape == (int(64 * (1.0 / (30 / 200))), 64)  # stood up to width 64
    assert padded_width(tall.shape) == math.ceil(200 / 30) * 64
    wide = np.zeros((32, 125), np.uint8)
    assert resize_to_height(wide).shape == (64, int(64 * 125 / 32))
    assert padded_width((64, 64)) == 64 and padded_width((64, 10)) == 64 * 7
    # EasyOCR passes PIL's LANCZOS (1) to cv2, which is INTER_LINEAR.
    ramp = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (20, 1))
    import cv2

    assert np.array_equal(resize_to_height(ramp), cv2.resize(ramp, (160, 64), interpolation=cv2.INTER_LINEAR))


def test_right_padding_repeats_the_last_column():
    gray = np.array(draw_line("ab"))
    gray[:, -1] = 17  # a distinctive last column
    t = batch_tensor([resize_to_height(gray)], width=512)[0, 0]
    used = resize_to_height(gray).shape[1]  # already 64 high: AlignCollate keeps its width
    assert torch.equal(t[:, used:], t[:, used - 1:used].expand(64, 512 - used))
    assert t.min() >= -1 and t.max() <= 1


def test_adjust_contrast_equals_easyocr():
    from easyocr.recognition import adjust_contrast_grey as theirs

    rng = np.random.default_rng(1)
    for low, high in [(100, 140), (0, 256), (120, 122)]:
        img = rng.integers(low, high, (30, 90), dtype=np.uint8)
        assert np.array_equal(adjust_contrast_grey(img, 0.5), theirs(img, 0.5))


def test_to_gray_conventions_and_errors():
    rgb = Image.new("RGB", (10, 4), (10, 200, 30))
    bgr = np.array(rgb)[:, :, ::-1].copy()
    assert np.array_equal(to_gray(rgb), to_gray(bgr))
    rgba = np.dstack([np.array(rgb), np.full((4, 10), 7, np.uint8)])
    assert np.array_equal(to_gray(rgba), to_gray(rgb))
    assert to_gray(Image.new("L", (5, 3), 9)).tolist() == [[9] * 5] * 3
    assert to_gray(np.full((3, 5, 1), 4, np.uint8)).shape == (3, 5)
    with pytest.raises(InputError, match="dtype float64"):
        to_gray(np.zeros((4, 4)))
    with pytest.raises(InputError, match="no pixels"):
        to_gray(np.zeros((0, 4), np.uint8))
    with pytest.raises(InputError, match="not supported"):
        to_gray("line.png")
    with pytest.raises(InputError, match="at least one"):
        prepare([])
