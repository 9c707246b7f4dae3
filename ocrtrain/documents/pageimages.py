"""Opening page images: JPEG, PNG, TIFF (every page of a multi-page TIFF), PDF pages (pypdfium2).

EXIF orientation is applied, so a phone photo stands the way it was taken. Pages over
`max_megapixels` are scaled down (JPEGs decode at reduced size directly, so a 100-megapixel photo
never sits in memory whole); the scale is returned so ground-truth boxes can follow. PDFs are
rendered one page at a time at `pdf_dpi`.

>>> # for frame in open_frames(Path("scan.pdf"), PageImportConfig()): frame.image.size
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from PIL import Image, ImageOps

from ..errors import InputError

__all__ = ["Frame", "count_frames", "open_frames", "encode_page"]


@dataclass(frozen=True)
class Frame:
    """One page image: which frame of its file, the RGB image, the scale applied, the original bytes."""

    index: Optional[int]
    image: Image.Image
    scale: float
    original: Optional[bytes] = None
    suffix: str = ".png"


def count_frames(path: Path) -> int:
    """How many pages `path` holds (PDF pages, TIFF frames, else 1); InputError if unreadable."""
    if path.suffix.lower() == ".pdf":
        import pypdfium2

        try:
            pdf = pypdfium2.PdfDocument(str(path))
        except Exception as exc:  # pypdfium2 raises its own PdfiumError and OSError
            raise InputError(f"{path} cannot be opened as a PDF ({exc}): re-export or replace it") from None
        try:
            return len(pdf)
        finally:
            pdf.close()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return int(getattr(im, "n_frames", 1))
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path} is too large to open safely ({exc}): scale it down first") from None
    except Exception as exc:
        raise InputError(f"{path} cannot be opened as an image ({type(exc).__name__}: {exc}): "
                         "replace it with a JPEG, PNG, TIFF or PDF") from None


def _fit(image: Image.Image, max_pixels: float) -> tuple[Image.Image, float]:
    pixels = image.size[0] * image.size[1]
    if pixels <= max_pixels:
        return image, 1.0
    scale = (max_pixels / pixels) ** 0.5
    size = (max(1, int(image.size[0] * scale)), max(1, int(image.size[1] * scale)))
    return image.resize(size, Image.LANCZOS), size[0] / image.size[0]


def _pdf_frames(path: Path, dpi: int, max_pixels: float, only: Optional[int]) -> Iterator[Frame]:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        indices = [only] if only is not None else range(len(pdf))
        for i in indices:
            if i >= len(pdf):
                raise InputError(f"{path} has {len(pdf)} pages, no page {i + 1}: fix the page reference")
            page = pdf[i]
            image = page.render(scale=dpi / 72.0).to_pil().convert("RGB")
            page.close()
            image, scale = _fit(image, max_pixels)
            yield Frame(i, image, scale * dpi / 72.0)
    finally:
        pdf.close()


def _raster_frames(path: Path, max_pixels: float, only: Optional[int]) -> Iterator[Frame]:
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(data))
        n = int(getattr(im, "n_frames", 1))
        indices = [only] if only is not None else range(n)
        for i in indices:
            if i >= n:
                raise InputError(f"{path} has {n} frames, no frame {i + 1}: fix the page reference")
            im.seek(i)
            full = im.size
            orientation = im.getexif().get(0x0112, 1) or 1
            if im.format == "JPEG" and full[0] * full[1] > max_pixels:
                ratio = (max_pixels / (full[0] * full[1])) ** 0.5
                im.draft("RGB", (int(full[0] * ratio), int(full[1] * ratio)))
            upright = ImageOps.exif_transpose(im.copy())
            image, _ = _fit(upright.convert("RGB"), max_pixels)
            # Ground truth is drawn on the upright image at full size: scale maps it onto this one.
            scale = image.size[0] / (full[1] if orientation in (5, 6, 7, 8) else full[0])
            keep = (n == 1 and image.size == full and orientation == 1 and im.format in ("JPEG", "PNG")
                    and im.mode in ("RGB", "L"))
            yield Frame(i if n > 1 else None, image, scale, data if keep else None,
                        ".jpg" if im.format == "JPEG" else ".png")


def open_frames(path: Path, max_megapixels: float = 40.0, pdf_dpi: int = 200,
                only: Optional[int] = None) -> Iterator[Frame]:
    """The pages of `path` (or only frame `only`, 0-based) as Frames; InputError names the file."""
    max_pixels = max_megapixels * 1e6
    try:
        if path.suffix.lower() == ".pdf":
            yield from _pdf_frames(path, pdf_dpi, max_pixels, only)
        else:
            yield from _raster_frames(path, max_pixels, only)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path} is too large to open safely ({exc}): scale it down first") from None
    except Exception as exc:  # PIL and pdfium raise many types for bad files
        raise InputError(f"{path} cannot be read as a page image ({type(exc).__name__}: {exc}): "
                         "replace it with a JPEG, PNG, TIFF or PDF") from None


def encode_page(frame: Frame) -> tuple[bytes, str]:
    """Bytes and suffix to store: the original file when nothing changed, else a PNG."""
    if frame.original is not None:
        return frame.original, frame.suffix
    buf = io.BytesIO()
    frame.image.save(buf, format="PNG", compress_level=3)
    return buf.getvalue(), ".png"
