"""Print-and-scan augmentation (#11): lost resolution and ink spread/thinning, off by default."""
import numpy as np
import pytest

from conftest import draw_line
from ocrtrain.augment import AugmentConfig, augment
from ocrtrain.errors import ConfigError


def _dark(img) -> int:
    return int((np.asarray(img) < 128).sum())


def test_new_transforms_are_off_by_default_and_count_as_augmentation():
    assert AugmentConfig().resolution == 0 and AugmentConfig().ink == 0
    only = dict(rotation=0, exposure=0, contrast=0, noise=0, blur=0)
    assert not AugmentConfig(**only).enabled
    assert AugmentConfig(**only, resolution=0.5).enabled and AugmentConfig(**only, ink=0.5).enabled


def test_ink_makes_strokes_bolder_or_thinner():
    line = draw_line("TOTAL 12.90", height=40, font_size=30)
    only_ink = dict(probability=1.0, rotation=0, exposure=0, contrast=0, noise=0, blur=0, ink=1.0)
    darker = lighter = 0
    for seed in range(12):
        out = augment(line, AugmentConfig(**only_ink), np.random.default_rng(seed))
        assert out.size == line.size and out.mode == "L"
        darker += _dark(out) > _dark(line)
        lighter += _dark(out) < _dark(line)
    assert darker and lighter  # both directions occur


def test_lost_resolution_keeps_size_and_loses_detail():
    line = draw_line("SDN BHD 933109-X", height=40, font_size=30)
    only_res = dict(probability=1.0, rotation=0, exposure=0, contrast=0, noise=0, blur=0, resolution=0.8)
    out = augment(line, AugmentConfig(**only_res), np.random.default_rng(1))
    assert out.size == line.size
    src, got = np.asarray(line, np.float32), np.asarray(out, np.float32)
    assert np.abs(src - got).mean() > 1.0
    # Less detail: smaller differences between neighbouring columns.
    assert np.abs(np.diff(got, axis=1)).mean() < np.abs(np.diff(src, axis=1)).mean()
    again = augment(line, AugmentConfig(**only_res), np.random.default_rng(1))
    assert np.array_equal(np.asarray(again), got)


@pytest.mark.parametrize("field,value,words", [("resolution", 0.9, "augment.resolution"),
                                               ("ink", 1.5, "augment.ink")])
def test_out_of_range_is_refused_with_the_range(field, value, words):
    with pytest.raises(ConfigError, match=words):
        AugmentConfig(**{field: value})
