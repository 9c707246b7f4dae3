"""Line images -> model input tensors, pixel-identical to what ``easyocr.Reader.recognize`` feeds.

EasyOCR's path for one crop (``detector=False``): grayscale -> ``compute_ratio_and_resize`` (cv2,
height 64 keeping the aspect ratio; tall crops are stood up to width 64 first) -> ``AlignCollate``
(optional contrast stretch, PIL bicubic resize to height 64, ``[-1, 1]`` scaling, right padding that
repeats the last column) to a width of ``ceil(aspect ratio) * 64``. Training and inference both use
these functions, so a model sees the same pixels here as inside EasyOCR.

>>> import numpy as np
>>> prepare([np.full((32, 100), 255, np.uint8)]).shape
torch.Size([1, 1, 64, 256])
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from PIL import Image

from .errors import InputError

__all__ = [
    "ImageLike",
    "to_gray",
    "aspect_ratio",
    "padded_width",
    "resize_to_height",
    "adjust_contrast_grey",
    "batch_tensor",
    "prepare",
]

ImageLike = Union[Image.Image, np.ndarray]

# EasyOCR passes PIL's LANCZOS constant (1) as cv2's interpolation flag, and 1 is cv2.INTER_LINEAR:
# its resize is bilinear, not Lanczos. Reproduce the flag it really uses.
_CV2_INTERPOLATION = cv2.INTER_LINEAR


def to_gray(image: ImageLike) -> np.ndarray:
    """A uint8 HxW grayscale copy of `image`, converted as EasyOCR's ``reformat_input`` does.

    PIL images are read as RGB. NumPy arrays follow EasyOCR/OpenCV conventions: HxW is gray,
    HxWx1 is squeezed, HxWx3 is **BGR** and HxWx4 is RGBA (alpha ignored).
    """
    if isinstance(image, Image.Image):
        if image.mode == "L":
            gray = np.array(image, dtype=np.uint8)
        elif image.mode in ("1", "LA", "I", "I;16", "F"):
            gray = np.array(image.convert("L"), dtype=np.uint8)
        else:
            gray = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY)
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InputError(f"image array has dtype {image.dtype}, expected uint8 (0..255): "
                             "convert it with array.astype(np.uint8) after scaling")
        if image.ndim == 2:
            gray = image.copy()
        elif image.ndim == 3 and image.shape[2] == 1:
            gray = image[:, :, 0].copy()
        elif image.ndim == 3 and image.shape[2] == 3:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif image.ndim == 3 and image.shape[2] == 4:
            gray = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)
        else:
            raise InputError(f"image array has shape {image.shape}, expected HxW, HxWx1, HxWx3 (BGR) "
                             "or HxWx4 (RGBA): pass one line image at a time")
    else:
        raise InputError(f"image of type {type(image).__name__} is not supported: pass a PIL image "
                         "or a uint8 NumPy array")
    if gray.shape[0] < 1 or gray.shape[1] < 1:
        raise InputError(f"image has no pixels (shape {gray.shape}): remove the empty crop")
    return np.ascontiguousarray(gray)


def aspect_ratio(height: int, width: int) -> float:
    """EasyOCR's ``calculate_ratio``: width/height, or its inverse for tall crops (always >= 1)."""
    ratio = width / height
    if ratio < 1.0:
        ratio = 1.0 / ratio
    return ratio


def padded_width(shape: Sequence[int], height: int = 64) -> int:
    """Width EasyOCR pads a crop of `shape` (H, W) to when it reads it alone: ``ceil(ratio) * height``."""
    return math.ceil(max(aspect_ratio(shape[0], shape[1]), 1)) * height


def resize_to_height(gray: np.ndarray, height: int = 64) -> np.ndarray:
    """EasyOCR's ``compute_ratio_and_resize``: scale to `height` keeping the aspect ratio.

    Quirk kept on purpose: a crop taller than wide is resized to *width* `height` and height
    ``height * H/W`` (EasyOCR's vertical-text case); :func:`batch_tensor` then squeezes it.
    """
    h, w = gray.shape[:2]
    ratio = w / h
    if ratio < 1.0:
        ratio = aspect_ratio(h, w)
        size = (height, int(height * ratio))
    else:
        size = (int(height * ratio), height)
    return cv2.resize(gray, size, interpolation=_CV2_INTERPOLATION)


def adjust_contrast_grey(gray: np.ndarray, target: float = 0.4) -> np.ndarray:
    """EasyOCR's contrast stretch: applied only when (p90 - p10) / (p90 + p10) is below `target`."""
    high = np.percentile(gray, 90)
    low = np.percentile(gray, 10)
    contrast = (high - low) / np.maximum(10, high + low)
    if contrast >= target:
        return gray
    ratio = 200.0 / np.maximum(10, high - low)
    stretched = (gray.astype(int) - low + 25) * ratio
    return np.clip(stretched, 0, 255).astype(np.uint8)


def _line_tensor(gray: np.ndarray, height: int, width: int, adjust_contrast: float) -> torch.Tensor:
    image = Image.fromarray(gray)
    w, h = image.size
    if adjust_contrast > 0:
        image = Image.fromarray(adjust_contrast_grey(np.asarray(image), target=adjust_contrast))
    resized_w = min(width, math.ceil(height * (w / float(h))))
    resized = image.resize((resized_w, height), Image.Resampling.BICUBIC)
    # Same arithmetic as torchvision's ToTensor + sub_(0.5).div_(0.5), so values match bit for bit.
    pixels = torch.from_numpy(np.array(resized, dtype=np.uint8)).to(torch.float32).div(255)
    pixels = pixels.sub(0.5).div(0.5).unsqueeze(0)
    padded = torch.zeros(1, height, width, dtype=torch.float32)
    padded[:, :, :resized_w] = pixels
    if resized_w < width:
        # EasyOCR's NormalizePAD repeats the last column instead of padding with a constant.
        padded[:, :, resized_w:] = pixels[:, :, resized_w - 1:resized_w].expand(1, height, width - resized_w)
    return padded


def batch_tensor(grays: Sequence[np.ndarray], height: int = 64, adjust_contrast: float = 0.0,
                 width: Optional[int] = None) -> torch.Tensor:
    """Stack lines already passed through :func:`resize_to_height` into [B, 1, height, width].

    `width` defaults to ``ceil(max aspect ratio) * height`` of the resized lines; :func:`prepare`
    passes the width computed from the original crops, as EasyOCR does.
    """
    if not grays:
        raise InputError("no images to batch: pass at least one line image")
    if width is None:
        width = max(padded_width(g.shape, height) for g in grays)
    return torch.stack([_line_tensor(g, height, width, adjust_contrast) for g in grays])


def prepare(images: Sequence[ImageLike], height: int = 64, adjust_contrast: float = 0.0) -> torch.Tensor:
    """Model input [B, 1, height, W] for line images, exactly as EasyOCR builds it.

    W is ``ceil(largest aspect ratio) * height`` (at least `height`); narrower lines are padded by
    repeating their last column. One image gives what ``Reader.recognize`` feeds the model.
    """
    if not images:
        raise InputError("no images to prepare: pass at least one line image")
    grays = [to_gray(image) for image in images]
    width = max(padded_width(g.shape, height) for g in grays)
    return batch_tensor([resize_to_height(g, height) for g in grays], height, adjust_contrast, width)
