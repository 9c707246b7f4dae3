"""Sources for bench/disk_soak.py, made once on the big disk: a synthetic dataset, a labels folder
of rendered receipt lines, a stored (uncompressed) zip of it, and ICDAR-box pages.

    >>> # src = make_sources(Path("/tmp/soak"), lines=120, pages=3)
"""
from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = ["make_sources"]


def _line_png(text: str, font) -> bytes:
    import io

    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right + 8, 40), 255)
    ImageDraw.Draw(img).text((4, 20 - (bottom - top) // 2 - top), text, fill=0, font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _font(size: int):
    from PIL import ImageFont

    fonts = sorted((Path(__import__("trdg").__file__).parent / "fonts" / "latin").glob("*.ttf"))
    return ImageFont.truetype(str(next((f for f in fonts if f.name == "Roboto-Regular.ttf"), fonts[0])), size)


def _labels_folder(out: Path, lines: int) -> Path:
    import random

    rng = random.Random(3)
    words = ["Melk", "Brød", "Smør", "Ost", "Kaffe", "Æbler", "Løk", "Blåbær", "Egg", "Rømme", "Kjøttdeig"]
    font = _font(26)
    out.mkdir(parents=True)
    rows = []
    for i in range(lines):
        text = f"{rng.choice(words)} {rng.choice(words)} {rng.randint(1, 99)},{rng.randint(0, 99):02d}"
        (out / f"l{i:04d}.png").write_bytes(_line_png(text, font))
        rows.append(f"l{i:04d}.png\t{text}")
    (out / "labels.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def _zip_of(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:  # stored: extraction writes every byte
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{folder.name}/{p.name}")
    return out


def _pages_folder(out: Path, pages: int) -> Path:
    from PIL import Image, ImageDraw

    font = _font(30)
    out.mkdir(parents=True)
    for n in range(pages):
        img = Image.new("RGB", (900, 1200), (250, 250, 245))
        draw, rows = ImageDraw.Draw(img), []
        for i in range(12):
            text, y = f"Vare {n}-{i} {10 + i},{i:02d}", 40 + i * 90
            draw.text((60, y), text, fill=(0, 0, 0), font=font)
            l, t, r, b = draw.textbbox((60, y), text, font=font)
            rows.append(f"{l - 3},{t - 3},{r + 3},{t - 3},{r + 3},{b + 3},{l - 3},{b + 3},{text}")
        img.save(out / f"page{n}.png")
        (out / f"page{n}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def make_sources(work: Path, lines: int, pages: int) -> dict:
    """The soak's inputs under `work` (kept: a second soak with the same --work reuses them)."""
    from ocrtrain.synth import SynthConfig, generate_dataset

    src = {"data": work / "data", "labels": work / "labels", "zip": work / "labels.zip", "pages": work / "pages"}
    if not src["data"].is_dir():
        generate_dataset(SynthConfig(count=lines, seed=1, workers=1), src["data"])
    if not src["labels"].is_dir():
        _labels_folder(src["labels"], lines)
    if not src["zip"].is_file():
        _zip_of(src["labels"], src["zip"])
    if not src["pages"].is_dir():
        _pages_folder(src["pages"], pages)
    return src
