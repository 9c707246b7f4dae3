"""Frozen convolutional features of training and validation lines, computed once and kept in memory.

With the CPU recipe the VGG features of a pretrained origin stay fixed and only the BiLSTM and head
train, yet every step ran the VGG forward again: about two thirds of a step's time on this CPU
(`python -m bench.feature_cache`). Without augmentation a line's features are the same at every
pass, so :class:`FeatureCache` computes them the first time a line is drawn and reuses them; with
``augment_variants N`` each line has N fixed augmentations, used in turn by the epochs, each cached.

What a batch then feeds the head: each line's features at its own width (what ``easyocr.Reader``
computes reading the line alone, its default), continued to the batch's widest line by the feature
column of the line's padding (the image path pads by repeating the last pixel column; far from the
text that gives one constant column, computed and kept with the line's features). The only difference
from running the VGG on the padded batch: the few columns just after a shorter line's end see the
image border there, as when the line is read alone, instead of more padding. Validation batches are
kept whole, so validation metrics are those of the full model (up to float rounding: the VGG runs
on a channels-last copy, ~1.7x faster on this CPU).

A padding column's features come from a column copy of the VGG (:func:`column_model`): on an image
that is the same in every column, a convolution's inner columns are the convolution of one column
with the kernel summed over its width, and a pooling's are the pooling of one column, so one pixel
column gives the middle feature column of the 64-px image (checked against it on the first lines;
where a layer has no such form the 64-px image is used).

>>> cache = FeatureCache(budget_bytes=0)
>>> cache.describe()
'feature cache: 0 lines kept (0 MB), 0 reused'
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable, Optional, Sequence

import torch
from torch import nn

__all__ = ["FeatureCache", "stack_rows", "batch_chunks", "column_model"]

#: Width in px of the constant image a padding column's features are read from (see _pad_images).
PAD_WIDTH = 64


class FeatureCache:
    """Features per training position (float16, CPU) and per validation batch (float32, exact)."""

    def __init__(self, budget_bytes: int, family=None, message: Optional[Callable[[str, str], None]] = None,
                 chunks: Optional[dict] = None, load: Optional[Callable[[int, int], torch.Tensor]] = None,
                 row_variant: Optional[Callable[[int, int], int]] = None, int8_calibration: Sequence[int] = ()):
        self.family = family
        # with positions: training lines' features from an int8 copy calibrated on them (int8_features)
        self.int8_calibration = tuple(int8_calibration)
        self._int8 = None
        # position -> the positions computed with it in one pass (fixed by config and data: batch_chunks)
        self.chunks = chunks or {}
        self.load = load
        # (position, the batch's variant) -> the variant the position is kept under (LineBatches.row_variant)
        self.row_variant = row_variant or (lambda pos, variant: variant)
        self.budget = int(budget_bytes)
        self.used = 0
        self.lines: dict[tuple, tuple] = {}  # (position, augmentation variant) -> (features, padding column)
        self.val: dict[tuple, torch.Tensor] = {}
        self.reused = 0
        self._fast = None  # a channels-last copy of the model for the training lines (see _compute)
        self._column = None  # the column copy for padding columns, False when it does not match (_pads)
        self._message = message
        self._full_said = False

    def describe(self) -> str:
        return (f"feature cache: {len(self.lines)} lines kept ({self.used / 2 ** 20:.0f} MB), "
                f"{self.reused} reused")

    def _keep(self, nbytes: int) -> bool:
        if self.used + nbytes <= self.budget:
            self.used += nbytes
            return True
        if not self._full_said and self._message is not None:
            self._message(f"feature cache full at {self.budget / 2 ** 20:.0f} MB ({len(self.lines)} lines): the "
                          "other lines' features are computed at every pass; raise feature_cache_mb to keep "
                          "more (memory permitting)", "warning")
        self._full_said = True
        return False

    # ---- training lines
    def rows(self, model, positions: Sequence[int], lines: Sequence[torch.Tensor], variant: int = 0) -> list[tuple]:
        """(features [T, C], padding column [C]) per row, float32 (features rounded to float16);
        `lines` are [1, 1, H, W] tensors of each line at its own width, `positions` their stable
        keys in the run's mixture, `variant` which fixed augmentation the batch draws (0 without); a
        line may be None when its features are kept (:class:`ocrtrain.tasks.lines.KnownRows`)."""
        given = {pos: line for pos, line in zip(positions, lines) if line is not None}
        fresh: dict[tuple, tuple] = {}
        for pos in positions:
            key = self.key(pos, variant)
            if key not in self.lines and key not in fresh:
                fresh.update(self._compute_chunk(model, pos, variant, given))
        out = []
        for pos in positions:
            key = self.key(pos, variant)
            if key in fresh:
                kept, pad = fresh[key]
            else:
                kept, pad = self.lines[key]
                self.reused += 1
            out.append((kept.to(torch.float32), pad))
        return out

    def _compute_chunk(self, model, pos: int, variant: int, given: dict) -> dict[tuple, tuple]:
        """(features rounded to float16, padding column) of `pos` and its chunk, kept when they fit.

        Which lines share a forward pass is fixed by the data, not by the batch that first needs
        them, and float16 rounding happens whether a line is kept or not: a line's numbers are the
        same at every pass and in a resumed run (a batched convolution's last bits depend on what
        else is in the batch). Once the budget is full, a line is computed alone."""
        chunk = [pos] if self._full_said else \
            [p for p in self.chunks.get(pos, (pos,)) if self.key(p, variant) not in self.lines]
        keys = [self.key(p, variant) for p in chunk]
        lines = [given[p] if p in given else self.load(*key) for p, key in zip(chunk, keys)]
        out = {}
        for key, (feats, pad) in zip(keys, self._compute(model, lines)):
            kept = (feats.to(torch.float16), pad)
            if self._keep(kept[0].numel() * 2 + pad.numel() * 4):
                self.lines[key] = kept
            out[key] = kept
        return out

    def key(self, pos: int, variant: int) -> tuple[int, int]:
        """The cache key of position `pos` in a batch drawing `variant`."""
        return pos, self.row_variant(pos, variant)

    def holds(self, pos: int, variant: int) -> bool:
        """Whether the features of `pos` under its own `variant` are kept (see KnownRows)."""
        return (pos, variant) in self.lines

    def _compute(self, model, lines: Sequence[torch.Tensor]) -> list[tuple]:
        """(features, padding column) of each line at its own width: lines of equal width in one
        forward pass, the padding columns of all in one more (see :meth:`_pad_images`)."""
        by_width: dict[int, list[int]] = {}
        for i, line in enumerate(lines):
            by_width.setdefault(int(line.shape[-1]), []).append(i)
        feats: list[Optional[torch.Tensor]] = [None] * len(lines)
        device = _device(model)
        fast = self._fast_copy(model)
        line_model = self._int8_copy(model) if self.int8_calibration else fast
        with torch.no_grad():
            for rows in by_width.values():
                images = torch.cat([lines[i] for i in rows]).to(device)
                images = images.contiguous(memory_format=torch.channels_last)
                out = self.family.line_features(line_model, images).float().cpu()
                for k, i in enumerate(rows):
                    feats[i] = out[k]
            middle = self._pads(model, fast, lines, device)
        return [(f, middle[i].clone()) for i, f in enumerate(feats)]

    def _pads(self, model, fast, lines: Sequence[torch.Tensor], device) -> torch.Tensor:
        """[N, C] feature column of each line's padding: by the column copy once it has matched the
        64-px images on the first lines, else from the 64-px images (see the module doc)."""
        def wide() -> torch.Tensor:
            pads = self.family.line_features(fast, _pad_images(lines).to(device))
            return pads[:, pads.shape[1] // 2].float().cpu()

        if self._column is False:
            return wide()
        if self._column is None:  # the first lines of a run (or of a resumed one) check the column copy
            column = column_model(model)
            pads = None if column is None else self._column_pads(column, lines, device)
            reference = wide()
            ok = pads is not None and torch.allclose(pads, reference, rtol=1e-4, atol=1e-4)
            self._column = column if ok else False
            return pads if ok else reference  # so a line's numbers never depend on when the check ran
        return self._column_pads(self._column, lines, device)

    def _column_pads(self, column, lines: Sequence[torch.Tensor], device) -> torch.Tensor:
        columns = torch.cat([line[..., -1:] for line in lines]).to(device)
        return self.family.line_features(column, columns)[:, 0].float().cpu()

    def _fast_copy(self, model):
        """The frozen model with channels-last weights: its convolutions run ~1.35x faster on this
        CPU (oneDNN's NHWC kernels; `python -m bench.feature_cache --split`). A copy, so the trained
        model and its checkpoints keep their layout; the features it gives are frozen anyway."""
        if self._fast is None:
            import copy

            self._fast = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
        return self._fast

    def _int8_copy(self, model):
        """The int8 copy of the frozen model for training lines, calibrated on the lines at
        `int8_calibration` (fixed by config and data, so a resumed run calibrates the same)."""
        if self._int8 is None:
            from .int8_features import int8_copy

            lines = [self.load(*self.key(pos, 0)) for pos in self.int8_calibration]
            self._int8 = int8_copy(model, lines)
        return self._int8

    # ---- validation batches
    def val_features(self, model, key: tuple, images: Optional[torch.Tensor]) -> torch.Tensor:
        """Features of a whole validation batch (as the full model computes them), kept when they fit
        (`images` may be None once they are kept)."""
        feats = self.val.get(key)
        if feats is not None:
            return feats
        fast = self._fast_copy(model)
        with torch.no_grad():
            feats = self.family.line_features(fast, images.to(_device(model)).contiguous(
                memory_format=torch.channels_last)).contiguous()
        if self._keep(feats.numel() * feats.element_size()):
            self.val[key] = feats
        return feats


def batch_chunks(plans: Iterable[Sequence[Sequence[int]]], width: Callable[[int], int],
                 height: int, source: Callable[[int], int] = lambda pos: 0) -> dict[int, tuple[int, ...]]:
    """position -> its chunk: the lines of equal padded width (ceil(width / height)) in the batch
    where the position first appears, over the epoch plans the run will train, of one `source` kind
    (lines that keep one augmentation all run apart from those that take their variants in turn, so
    a chunk is always computed whole). A batch then computes just its own new lines (no waiting for
    lines of later batches), and the chunks are fixed by the config and data, so a resumed run
    computes each line in the same company."""
    chunks: dict[int, tuple[int, ...]] = {}
    for plan in plans:
        for batch in plan:
            groups: dict[int, list[int]] = {}
            for pos in batch:
                if pos not in chunks:
                    groups.setdefault((source(pos), -(-width(pos) // height)), []).append(pos)
            for group in groups.values():
                chunk = tuple(dict.fromkeys(group))
                chunks.update((pos, chunk) for pos in chunk)
    return chunks


def stack_rows(rows: Sequence[tuple]) -> torch.Tensor:
    """[B, T, C] from (features, padding column) rows: each padded to the widest by its own column."""
    width = max(f.shape[0] for f, _ in rows)
    channels = rows[0][0].shape[1]
    out = torch.empty(len(rows), width, channels, dtype=torch.float32)
    for i, (feats, pad) in enumerate(rows):
        out[i, :feats.shape[0]] = feats
        out[i, feats.shape[0]:] = pad
    return out


def column_model(model: nn.Module) -> Optional[nn.Module]:
    """An eval copy of `model` whose 2-d convolutions and max-poolings read one pixel column that
    stands for an image equal in every column: each convolution's kernel summed over its width, each
    pooling window one column wide (None when a convolution is grouped: no such form is made)."""
    column = copy.deepcopy(model).eval()
    for parent in list(column.modules()):
        for name, layer in list(parent.named_children()):
            if isinstance(layer, nn.Conv2d):
                if layer.groups != 1:
                    return None
                new = nn.Conv2d(layer.in_channels, layer.out_channels, (layer.kernel_size[0], 1),
                                (layer.stride[0], 1), (layer.padding[0], 0), (layer.dilation[0], 1),
                                bias=layer.bias is not None).to(layer.weight.device)
                with torch.no_grad():
                    new.weight.copy_(layer.weight.sum(dim=3, keepdim=True))
                    if layer.bias is not None:
                        new.bias.copy_(layer.bias)
                setattr(parent, name, new)
            elif isinstance(layer, nn.MaxPool2d):
                k, s, p = (_pair(v) for v in (layer.kernel_size, layer.stride or layer.kernel_size, layer.padding))
                setattr(parent, name, nn.MaxPool2d((k[0], 1), (s[0], 1), (p[0], 0), ceil_mode=layer.ceil_mode))
    return column


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pad_images(lines: Sequence[torch.Tensor]) -> torch.Tensor:
    """[N, C, H, PAD_WIDTH] images each of one line's last pixel column repeated (what the image
    path pads a line with). Their middle feature column sees no image border: english_g2's VGG sees
    46 px, and 64 px gives the same column as 128 and 256 px wide (checked)."""
    height = int(lines[0].shape[-2])
    columns = torch.cat([line[..., -1:] for line in lines])
    return columns.expand(-1, -1, height, max(PAD_WIDTH, height)).contiguous(memory_format=torch.channels_last)


def _device(model) -> torch.device:
    return next(model.parameters()).device
