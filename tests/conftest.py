"""Shared test fixtures: images drawn in-process and a tiny dataset folder (no trdg, no network)."""
from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path(__import__("trdg").__file__).parent / "fonts" / "latin"
FONT = next(p for p in sorted(FONT_DIR.glob("Roboto-Regular.ttf"))) if list(FONT_DIR.glob("Roboto-Regular.ttf")) \
    else sorted(FONT_DIR.glob("*.ttf"))[0]

WORDS = ["Melk", "Brød", "Smør", "Ost", "Kaffe", "Æbler", "Løk", "Blåbær", "Egg", "Rømme", "Øl", "Kjøttdeig"]


def cached_recipe(**changes) -> dict:
    """TrainConfig fields for a few CPU steps of the cached-features recipe on tiny data (no guard,
    general set, replay or augmentation), with `changes` on top."""
    from ocrtrain.augment import AugmentConfig

    return {**dict(max_steps=3, val_interval=3, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
                   freeze_feature_extractor=True, device="cpu", guard="", general_val=0, replay=0.0,
                   augment=AugmentConfig(probability=0.0)), **changes}


def draw_line(text: str, height: int = 32, font_size: int = 24) -> Image.Image:
    """A white-background black-text line image, drawn with a trdg font."""
    font = ImageFont.truetype(str(FONT), font_size)
    left, top, right, bottom = font.getbbox(text or " ")
    img = Image.new("L", (max(8, right + 8), height), 255)
    ImageDraw.Draw(img).text((4, (height - (bottom - top)) // 2 - top), text, fill=0, font=font)
    return img


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def sample_labels(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(WORDS)} {rng.randint(1, 99)},{rng.randint(0, 99):02d}" for _ in range(n)]


def write_drawn_dataset(out: Path, pairs, val_fraction: float = 0.25, split_seed: int = 3) -> Path:
    """A dataset folder of (drawn text, label) pairs, no test split."""
    from ocrtrain.dataset import DatasetWriter, SplitConfig

    with DatasetWriter(out, SplitConfig(val_fraction=val_fraction, test_fraction=0.0, split_seed=split_seed),
                       source={"kind": "test-drawn"}) as writer:
        for i, (text, label) in enumerate(pairs):
            writer.add(png_bytes(draw_line(text)), label, sample=f"{out.name}-{i}")
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A dataset folder of 40 drawn receipt lines (split 30/5/5 by seed)."""
    from ocrtrain.dataset import DatasetWriter, SplitConfig

    out = tmp_path_factory.mktemp("data") / "tiny"
    with DatasetWriter(out, SplitConfig(val_fraction=0.15, test_fraction=0.15, split_seed=1),
                       source={"kind": "test-drawn"}) as writer:
        for i, label in enumerate(sample_labels(40)):
            writer.add(png_bytes(draw_line(label)), label, sample=f"drawn-{i}")
    return out


@pytest.fixture(scope="session", autouse=True)
def _ocrtrain_home(tmp_path_factory):
    """OCRTRAIN_HOME in a temporary folder for the whole session, so no test touches ~/ocrtrain
    (set in os.environ, not monkeypatched, so that module-scoped fixtures and jobs see it too)."""
    import os

    old = os.environ.get("OCRTRAIN_HOME")
    os.environ["OCRTRAIN_HOME"] = str(tmp_path_factory.mktemp("ocrtrain-home"))
    # Regenerable data (the general validation set) once per session, whatever HOME a test picks.
    os.environ.setdefault("OCRTRAIN_CACHE", str(tmp_path_factory.mktemp("ocrtrain-cache")))
    yield Path(os.environ["OCRTRAIN_HOME"])
    if old is None:
        os.environ.pop("OCRTRAIN_HOME", None)
    else:
        os.environ["OCRTRAIN_HOME"] = old
