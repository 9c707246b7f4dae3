"""Document-like degradations of rendered text lines: thermal fading, paper, light, optics, JPEG.

A :class:`Degradation` is a recipe of strengths; :data:`PRESETS` names the ones the synthetic
renderer offers (``plain``, ``receipt-printer``, ``scanned-page``, ``phone-photo``). Every random
number comes from a ``numpy.random.Generator`` the caller seeds per sample, so a dataset stays
byte-reproducible for any number of render workers. The image keeps its size.

>>> import numpy as np
>>> from PIL import Image
>>> line = Image.new("L", (120, 48), 255)
>>> out = degrade(line, PRESETS["receipt-printer"], np.random.default_rng(0))
>>> out.size, out.mode
((120, 48), 'L')
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["Degradation", "PRESETS", "PRESET_NAMES", "degrade", "degrade_rng"]


@dataclass(frozen=True)
class Degradation:
    """Strengths of each step; 0 (or None) leaves a step out. Ranges are drawn uniformly per sample.

    - ``fade``: largest share of the ink's darkness lost, modulated by a smooth random field
      (a thermal head that heats unevenly, an old receipt).
    - ``streaks``: chance of one or two pale vertical lines through the text (a dead heating dot).
    - ``paper``: (lowest, highest) grey level of the paper; ``ink``: (darkest, lightest) grey of
      fully inked pixels: together they set the contrast.
    - ``shading``: largest illumination drop across the line (a phone's uneven light).
    - ``perspective``: largest corner shift as a share of the height.
    - ``defocus``: largest extra Gaussian blur radius in pixels; ``motion``: largest horizontal
      motion blur length in pixels.
    - ``noise``: largest Gaussian noise sigma in grey levels; ``speckle``: share of pixels turned
      into dust specks.
    - ``downscale``: smallest resolution factor (0.5 = drawn at half resolution, scaled back).
    - ``jpeg``: (lowest, highest) JPEG quality, or None for no compression.
    """

    fade: float = 0.0
    streaks: float = 0.0
    paper: tuple[int, int] = (255, 255)
    ink: tuple[int, int] = (0, 0)
    shading: float = 0.0
    perspective: float = 0.0
    defocus: float = 0.0
    motion: float = 0.0
    noise: float = 0.0
    speckle: float = 0.0
    downscale: float = 1.0
    jpeg: Optional[tuple[int, int]] = None

    @property
    def identity(self) -> bool:
        return self == Degradation()


#: The named looks of :class:`ocrtrain.synth.RenderConfig` ``preset``.
PRESETS: dict[str, Degradation] = {
    # trdg's own rendering, nothing added.
    "plain": Degradation(),
    # Thermal receipt: greyish paper, faded and patchy ink, low contrast, a slight tilt of the
    # slip, camera or scanner JPEG.
    "receipt-printer": Degradation(fade=0.55, streaks=0.25, paper=(214, 250), ink=(40, 130), perspective=0.06,
                                   defocus=0.6, noise=5.0, downscale=0.7, jpeg=(35, 85)),
    # Office scanner: white paper, crisp dark ink, dust, a little blur and JPEG.
    "scanned-page": Degradation(fade=0.1, paper=(235, 255), ink=(0, 50), perspective=0.015, defocus=0.4,
                                noise=3.0, speckle=0.002, downscale=0.8, jpeg=(60, 95)),
    # Phone photo: uneven light, perspective, defocus or shake, sensor noise, strong JPEG.
    "phone-photo": Degradation(fade=0.15, paper=(170, 240), ink=(20, 90), shading=0.35, perspective=0.12,
                               defocus=1.2, motion=4.0, noise=7.0, downscale=0.6, jpeg=(30, 80)),
}
PRESET_NAMES = tuple(PRESETS)


def degrade_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample `index` of a dataset drawn with `seed` (independent of workers)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, index, 0xDE6])


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int = 6) -> np.ndarray:
    """A smooth random field in 0..1 (a coarse grid of random values, bilinearly enlarged)."""
    gw = max(2, int(cells * width / max(height, 1) / 2) + 2)
    grid = rng.random((3, gw)).astype(np.float32)
    img = Image.fromarray((grid * 255).astype(np.uint8), "L").resize((width, height), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _perspective(img: Image.Image, amount: float, fill: int, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    shift = rng.uniform(-amount, amount, size=(4, 2)) * h
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], dtype=np.float64)
    dst = src + shift
    # Coefficients mapping output (dst) points back to input (src) points, as PIL wants them.
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coeffs = np.linalg.solve(np.array(rows), src.reshape(-1))
    return img.transform((w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR,
                         fillcolor=fill)


def _tone(arr: np.ndarray, d: Degradation, rng: np.random.Generator) -> np.ndarray:
    """Darkness 0..1 (paper..ink) faded, streaked and mapped onto paper/ink grey levels."""
    h, w = arr.shape
    dark = 1.0 - arr / 255.0
    if d.fade:
        strength = rng.uniform(d.fade / 3, d.fade)
        dark = dark * (1.0 - strength * _smooth_field(rng, h, w))
    if d.streaks and rng.random() < d.streaks:
        for x in rng.integers(0, w, size=int(rng.integers(1, 3))):
            dark[:, x:x + 1] *= rng.uniform(0.1, 0.5)
    paper = rng.uniform(*d.paper)
    ink = min(rng.uniform(*d.ink), paper - 40)
    out = paper - dark * (paper - ink)
    if d.shading:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = xs * np.cos(angle) / max(w, 1) + ys * np.sin(angle) / max(h, 1)
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        out = out * (1.0 - rng.uniform(0, d.shading) * ramp)
    return out


def _optics(img: Image.Image, d: Degradation, rng: np.random.Generator) -> Image.Image:
    if d.defocus:
        radius = rng.uniform(0, d.defocus)
        if radius > 0.05:
            img = img.filter(ImageFilter.GaussianBlur(radius))
    if d.motion:
        length = int(round(rng.uniform(0, d.motion)))
        if length >= 2:
            arr = np.asarray(img, dtype=np.float32)
            padded = np.pad(arr, ((0, 0), (length // 2, length - 1 - length // 2)), mode="edge")
            arr = sum(padded[:, k:k + arr.shape[1]] for k in range(length)) / length
            img = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "L")
    if d.downscale < 1.0:
        factor = rng.uniform(d.downscale, 1.0)
        w, h = img.size
        small = img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR)
        img = small.resize((w, h), Image.Resampling.BILINEAR)
    return img


def degrade(image: Image.Image, d: Degradation, rng: np.random.Generator) -> Image.Image:
    """A degraded greyscale copy of `image` (same size); draws from `rng` in a fixed order."""
    img = image.convert("L")
    if d.identity:
        return img
    arr = np.asarray(img, dtype=np.float32)
    toned = _tone(arr, d, rng)
    img = Image.fromarray(np.clip(toned, 0, 255).round().astype(np.uint8), "L")
    if d.perspective:
        border = np.concatenate([toned[0], toned[-1], toned[:, 0], toned[:, -1]])
        img = _perspective(img, d.perspective, int(np.median(border)), rng)
    img = _optics(img, d, rng)
    if d.noise or d.speckle:
        arr = np.asarray(img, dtype=np.float32)
        if d.noise:
            arr = arr + rng.normal(0.0, rng.uniform(0, d.noise), arr.shape)
        if d.speckle:
            specks = rng.random(arr.shape) < d.speckle
            arr = np.where(specks, rng.uniform(0, 120, arr.shape), arr)
        img = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "L")
    if d.jpeg:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(d.jpeg[0], d.jpeg[1] + 1)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    return img
