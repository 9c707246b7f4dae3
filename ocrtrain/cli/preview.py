"""`ocrtrain preview`: a PNG grid of synthetic samples with their labels (writes no dataset)."""
from __future__ import annotations

import argparse

from PIL import Image, ImageDraw, ImageFont

from ..errors import ConfigError, InputError
from ..synth import preview, trdg_font_dir
from .synth import add_synth_options, synth_config

__all__ = ["register", "run", "grid_image"]


def register(sub) -> None:
    p = sub.add_parser("preview", help="render N synthetic samples into a PNG grid",
                       description="Render the first N samples of a synth config into one PNG, each with its label.")
    p.add_argument("--out", default="preview.png", metavar="FILE.png", help="grid image to write (default: preview.png)")
    p.add_argument("-n", type=int, default=16, help="number of samples (default: 16)")
    add_synth_options(p)
    p.set_defaults(func=run)


def grid_image(samples: list[tuple[Image.Image, str]]) -> Image.Image:
    """One grayscale image: each sample with its label (repr, so spaces show) underneath."""
    width = max(im.width for im, _ in samples) + 16
    row = max(im.height for im, _ in samples) + 22
    grid = Image.new("L", (width, row * len(samples)), 255)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.truetype(str(trdg_font_dir() / "Roboto-Regular.ttf"), 13)
    for i, (im, label) in enumerate(samples):
        grid.paste(im.convert("L"), (8, i * row))
        draw.text((8, i * row + im.height + 2), repr(label), fill=0, font=font)
    return grid


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"-n must be at least 1, got {args.n}")
    samples = preview(synth_config(args), args.n)
    if not samples:
        raise InputError(f"none of the first {args.n} lines could be drawn with the fonts: see `ocrtrain synth` "
                         "rejected.csv reasons, or change the text source or fonts")
    grid_image(samples).save(args.out)
    print(f"wrote {args.out} ({len(samples)} samples)")
    return 0
