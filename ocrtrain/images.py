"""Checking and decoding untrusted image bytes (corrupt, truncated, empty, bombs)."""
from __future__ import annotations

import io
import re
import warnings
from typing import Optional

import numpy as np
from PIL import Image

from .errors import InputError

__all__ = ["MAX_PIXELS", "decode_image", "encode_png", "to_8bit"]

#: Largest accepted image (pixels); a text-line crop is far smaller. Above this is a "bomb".
MAX_PIXELS = 40_000_000
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def decode_image(data: bytes, where: str = "image", mode: Optional[str] = None) -> Image.Image:
    """Decode `data` completely (optionally converting to `mode`)."""
    if not data:
        raise InputError(f"{where} is empty (0 bytes): replace or remove the file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            w, h = image.size
            if w * h > MAX_PIXELS:
                raise InputError(
                    f"{where} is {w}x{h} pixels, over the {MAX_PIXELS:,} limit (a decompression bomb?): "
                    "crop it to the text line"
                )
            image.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{where} is a decompression bomb ({exc}): crop it to the text line") from None
    except Exception as exc:  # PIL raises many types for bad data
        raise InputError(f"{where} cannot be decoded as an image ({_pil_detail(exc)}): "
                         "replace the file with a valid PNG/JPEG") from None
    if image.size[0] < 1 or image.size[1] < 1:
        raise InputError(f"{where} has no pixels: replace the file")
    image = to_8bit(image)
    return image.convert(mode) if mode and image.mode != mode else image


def _pil_detail(exc: Exception) -> str:
    """PIL's reason without the in-memory buffer it names (``<_io.BytesIO object at 0x...>``)."""
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not a PNG, JPEG or other image format Pillow reads"
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def to_8bit(image: Image.Image) -> Image.Image:
    """16-bit greyscale as 8-bit greyscale, the way OpenCV (EasyOCR's loader) reads it: the high byte.

    PIL opens a 16-bit PNG/TIFF as mode ``I;16`` and its ``convert("L")`` clips every value
    above 255 to white, so a 16-bit scan would read as a blank page. Other images are returned
    as they are.

    >>> to_8bit(Image.fromarray(np.full((2, 2), 32896, np.uint16))).getpixel((0, 0))
    128
    """
    if image.mode not in _SIXTEEN_BIT and not (image.mode == "I" and image.format == "PNG"):
        return image
    values = np.asarray(image)
    if image.mode == "I":  # older Pillow opens 16-bit PNGs as 32-bit "I"
        values = np.clip(values, 0, 65535)
    return Image.fromarray((values.astype(np.uint32) >> 8).astype(np.uint8), "L")


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of `image` (compact, lossless)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
