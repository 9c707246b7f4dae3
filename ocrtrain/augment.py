"""Photometric and geometric augmentation of text-line images (PIL/numpy, before preprocessing).

Each transform fires independently with ``probability``; its strength is drawn uniformly up to
the configured maximum. Randomness comes from a ``numpy.random.Generator`` the caller seeds per
sample, so a run is reproducible whatever the number of data-loading workers.

>>> import numpy as np
>>> from PIL import Image
>>> img = Image.new("L", (80, 32), 255)
>>> out = augment(img, AugmentConfig(probability=1.0), np.random.default_rng(0))
>>> out.size, out.mode
((80, 32), 'L')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np
from PIL import Image, ImageFilter

from .config import Config, check

__all__ = ["AugmentConfig", "augment", "sample_rng"]


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Random distortions applied to training images only (never to validation)."""

    probability: float = field(default=0.5, metadata={
        "help": "chance that each transform is applied to a sample (0 turns augmentation off)"})
    rotation: float = field(default=1.5, metadata={"help": "largest rotation in degrees (either way)"})
    exposure: float = field(default=0.15, metadata={
        "help": "largest brightness shift as a share of the 0..255 range"})
    contrast: float = field(default=0.3, metadata={"help": "largest contrast change (0.3 = x0.7..x1.3)"})
    noise: float = field(default=6.0, metadata={"help": "largest Gaussian noise sigma in grey levels"})
    blur: float = field(default=0.8, metadata={"help": "largest Gaussian blur radius in pixels"})
    resolution: float = field(default=0.0, metadata={
        "help": "largest share of resolution lost: the line is shrunk by up to this share and scaled back "
                "(0.5 = down to half size; low-resolution scans and photos); 0 = off"})
    ink: float = field(default=0.0, metadata={
        "help": "largest change of stroke width, 0..1 of a pixel each side: the ink spreads (bolder) or "
                "thins (faded thermal print) by up to this much; 0 = off"})

    def validate(self) -> None:
        check(0.0 <= self.probability <= 1.0,
              f"augment.probability must be in [0, 1], got {self.probability}: use 0 to turn it off")
        check(0.0 <= self.rotation <= 15.0,
              f"augment.rotation must be in [0, 15] degrees, got {self.rotation}: text lines "
              "rotated further no longer fit their crop")
        check(0.0 <= self.exposure <= 0.5, f"augment.exposure must be in [0, 0.5], got {self.exposure}")
        check(0.0 <= self.contrast < 1.0, f"augment.contrast must be in [0, 1), got {self.contrast}")
        check(0.0 <= self.noise <= 64.0, f"augment.noise must be in [0, 64] grey levels, got {self.noise}")
        check(0.0 <= self.blur <= 4.0, f"augment.blur must be in [0, 4] pixels, got {self.blur}")
        check(0.0 <= self.resolution <= 0.8, f"augment.resolution must be in [0, 0.8], got {self.resolution}: "
                                               "a line shrunk further loses its letters")
        check(0.0 <= self.ink <= 1.0, f"augment.ink must be in [0, 1] pixels, got {self.ink}")

    @property
    def enabled(self) -> bool:
        return self.probability > 0 and any(
            (self.rotation, self.exposure, self.contrast, self.noise, self.blur, self.resolution, self.ink))


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample in one epoch (independent of worker count and order)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, index])


def _background(gray: np.ndarray) -> int:
    # Rotation must fill the new corners with the page colour, not black: take the border median.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return int(np.median(border))


def _ink(img: Image.Image, width: float, most: float) -> Image.Image:
    """Strokes (dark on light) up to `most` pixels bolder (width > 0) or thinner (width < 0) on each
    side: a blend toward the one-pixel min (max) filter, so thin strokes of small crops survive."""
    grown = img.filter(ImageFilter.MinFilter(3) if width > 0 else ImageFilter.MaxFilter(3))
    return Image.blend(img, grown, min(1.0, abs(width) * most))


def _lose_resolution(img: Image.Image, scale: float) -> Image.Image:
    """`img` shrunk to `scale` of its size (at least 8 px high) and scaled back: detail is lost."""
    w, h = img.size
    small = (max(1, round(w * scale)), max(min(h, 8), round(h * scale)))
    if small == (w, h):
        return img
    return img.resize(small, Image.BOX).resize((w, h), Image.BILINEAR)


def _print_and_scan(img: Image.Image, config: AugmentConfig, rng: np.random.Generator) -> Image.Image:
    fire = rng.random(2) < config.probability
    shrink, width = rng.random(), rng.uniform(-1, 1)
    if fire[1] and config.ink > 0:
        img = _ink(img, width, config.ink)
    if fire[0] and config.resolution > 0:
        img = _lose_resolution(img, 1.0 - shrink * config.resolution)
    return img


def augment(image: Union[Image.Image, np.ndarray], config: AugmentConfig,
            rng: np.random.Generator) -> Image.Image:
    """A distorted greyscale copy of `image` (same size); `image` itself is not changed."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    img = img.convert("L")
    if not config.enabled:
        return img
    p = config.probability
    # Draw every random number in a fixed order so results do not depend on which transforms fire.
    fire = rng.random(5) < p
    angle, shift, gain, sigma, radius = (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1),
                                         rng.random(), rng.random())
    noise_seed = int(rng.integers(0, 2**31 - 1))
    # Drawn after the first five, so runs without these transforms see the numbers they always saw.
    if config.resolution > 0 or config.ink > 0:
        img = _print_and_scan(img, config, rng)
    if fire[0] and config.rotation > 0:
        fill = _background(np.asarray(img))
        img = img.rotate(angle * config.rotation, resample=Image.BILINEAR, expand=False, fillcolor=fill)
    if fire[4] and config.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius=radius * config.blur))
    arr = np.asarray(img, dtype=np.float32)
    changed = False
    if fire[2] and config.contrast > 0:
        mean = float(arr.mean())
        arr = (arr - mean) * (1.0 + gain * config.contrast) + mean
        changed = True
    if fire[1] and config.exposure > 0:
        arr = arr + shift * config.exposure * 255.0
        changed = True
    if fire[3] and config.noise > 0:
        arr = arr + np.random.default_rng(noise_seed).normal(0.0, sigma * config.noise, arr.shape)
        changed = True
    if changed:
        img = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "L")
    return img
