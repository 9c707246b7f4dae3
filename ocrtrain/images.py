"""Checking and decoding untrusted image bytes (corrupt, truncated, empty, bombs)."""
from __future__ import annotations

import io
import warnings
from typing import Optional

from PIL import Image

from .errors import InputError

__all__ = ["MAX_PIXELS", "check_image", "decode_image", "encode_png"]

#: Largest accepted image (pixels); a text-line crop is far smaller. Above this is a "bomb".
MAX_PIXELS = 40_000_000


def check_image(data: bytes, where: str = "image") -> tuple[int, int]:
    """Fully decode `data` to prove it is a usable image; return (width, height).

    Raises InputError naming `where` for empty, corrupt, truncated or oversized images.
    """
    if not data:
        raise InputError(f"{where} is empty (0 bytes): replace or remove the file")
    image = decode_image(data, where)
    return image.size


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
        raise InputError(f"{where} cannot be decoded as an image ({type(exc).__name__}: {exc}): "
                         "replace the file with a valid PNG/JPEG") from None
    if image.size[0] < 1 or image.size[1] < 1:
        raise InputError(f"{where} has no pixels: replace the file")
    return image.convert(mode) if mode and image.mode != mode else image


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of `image` (compact, lossless)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
