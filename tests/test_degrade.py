"""Degradation presets: seeded per sample, same size, and each one really changes the look."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocrtrain.degrade import PRESET_NAMES, PRESETS, Degradation, degrade, degrade_rng


def _line() -> Image.Image:
    img = Image.new("L", (160, 48), 255)
    ImageDraw.Draw(img).rectangle((10, 12, 150, 36), fill=0)
    return img


def test_plain_is_the_identity_and_names_match():
    assert PRESET_NAMES == ("plain", "receipt-printer", "scanned-page", "phone-photo")
    img = _line()
    assert degrade(img, PRESETS["plain"], degrade_rng(0, 0)).tobytes() == img.tobytes()


@pytest.mark.parametrize("name", ["receipt-printer", "scanned-page", "phone-photo"])
def test_presets_are_seeded_and_change_the_pixels(name):
    img = _line()
    a = degrade(img, PRESETS[name], degrade_rng(3, 7))
    assert a.size == img.size and a.mode == "L"
    assert a.tobytes() == degrade(img, PRESETS[name], degrade_rng(3, 7)).tobytes()
    assert a.tobytes() != degrade(img, PRESETS[name], degrade_rng(3, 8)).tobytes()
    assert a.tobytes() != img.tobytes()


def test_receipt_printer_lowers_contrast_and_fades_ink():
    img = _line()
    outs = [np.asarray(degrade(img, PRESETS["receipt-printer"], degrade_rng(1, i)), dtype=np.float32)
            for i in range(20)]
    ink = [o[18:30, 20:140].mean() for o in outs]      # inside the bar
    paper = [o[2:8, :].mean() for o in outs]           # above it
    assert min(paper) > 180 and all(p - k < 220 for p, k in zip(paper, ink))  # never black on white
    assert np.mean(ink) > 40  # faded thermal ink is grey, not 0
    assert max(paper) - min(paper) > 5  # paper tone varies per sample


def test_perspective_moves_the_ink():
    img = _line()
    tilt = Degradation(perspective=0.2)
    out = np.asarray(degrade(img, tilt, degrade_rng(0, 1)))
    assert (out != np.asarray(img)).mean() > 0.02
