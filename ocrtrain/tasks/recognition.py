"""Text-line recognition: the first training task (english_g2-style CRNN with CTC, or another family).

Reads a mixture of dataset folders (:mod:`ocrtrain.datamix`), adapts the origin's charset to the
data, plans width-bucketed batches, computes the family's loss and validates on each named
validation set with the line metrics of :mod:`ocrtrain.metrics`.

>>> from ocrtrain.tasks import get_task
>>> task = get_task("recognition")
>>> task.default_metric
'cer'
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..datamix import describe, is_replay, val_split_path
from ..errors import ConfigError, DatasetError
from .anchor import OriginAnchor
from .caseless import CaseFold, caseless_sources
from .base import Task, TaskContext
from .feature_cache import FeatureCache, batch_chunks, stack_rows
from .lines import KnownRows, LineBatches, LineSet, filter_lines, plan_mixture, scan_split

__all__ = ["RecognitionTask", "MIN_TRAIN_SAMPLES", "label_codec"]

log = logging.getLogger(__name__)
MIN_TRAIN_SAMPLES = 2
#: Decoded validation batches are kept in memory when they fit in this many bytes.
VAL_CACHE_BYTES = 256 * 1024 * 1024
#: Fixed augmentations per line when the feature cache is on and augment_variants is -1 (auto).
AUTO_VARIANTS = 2


class RecognitionTask(Task):
    """Fine-tune a text-line recognizer on weighted dataset folders, validating on named sets."""

    name = "recognition"
    default_metric = "cer"

    def setup(self, ctx: TaskContext, resume_from: Optional[Path]) -> None:
        from ..origins import adapt_charset, load_origin

        self.ctx = ctx
        cfg = ctx.config
        spec = ctx.data
        if resume_from is not None:
            loaded = load_origin(str(resume_from), device="cpu")
        else:
            loaded = load_origin(cfg.origin, device="cpu", seed=cfg.seed, family=cfg.family or None)
        train_scans = [(Path(s.path) / "train", *scan_split(Path(s.path) / "train")) for s in spec.train]
        val_scans = [(v.name, val_split_path(v.path, v.name)) for v in spec.val]
        val_scans = [(name, path, *scan_split(path)) for name, path in val_scans]
        self._check_not_empty(train_scans, val_scans)
        if resume_from is None:
            chars = "".join(sorted({c for s in train_scans + val_scans for label in s[-2] for c in label}))
            loaded = self._adapt(loaded, chars, adapt_charset)
        self.loaded = loaded
        self.family, self.options = loaded.family, loaded.family_options
        self.model = loaded.model.to(ctx.device)
        self.charset = loaded.charset
        self.model_config = loaded.model_config
        self.height = self.family.img_height(self.options)
        frozen = self._freeze(cfg, ctx.device)
        self.family.freeze_feature_extractor(self.model, frozen)
        if frozen and cfg.train_last_convs:
            if not hasattr(self.model, "thaw_last_convs"):
                raise ConfigError(f"train_last_convs needs an easyocr-crnn model, not {self.family.name}: set it to 0")
            thawed = self.model.thaw_last_convs(cfg.train_last_convs)
            ctx.message(f"features frozen except the last {cfg.train_last_convs} convolution(s) "
                        f"({', '.join(thawed)})", "info")
        self._freeze_rnn(cfg, frozen)
        self._read_lines(train_scans, val_scans)
        self.anchor = OriginAnchor.build(cfg, loaded, ctx.device)
        self.replay_sources = {i for i, s in enumerate(spec.train) if is_replay(s.path)}
        self.fold, self.caseless = self._caseless(cfg, train_scans, val_scans)
        self.features = self._feature_cache(cfg, frozen and not cfg.train_last_convs)
        if self.anchor is not None or self.replay_sources:
            ctx.message(self._lever_text(), "info")

    def _caseless(self, cfg, train_scans, val_scans) -> tuple[Optional[CaseFold], frozenset]:
        """The case fold and the training sources it applies to (:mod:`ocrtrain.tasks.caseless`)."""
        names = [Path(s.path).name for s in self.ctx.data.train]
        chosen = caseless_sources(cfg.caseless, names, [scan[1] for scan in train_scans], self.replay_sources)
        if not chosen:
            return None, frozenset()
        if not self.family.folds_case(self.options):
            raise ConfigError(f"caseless training needs a CTC model, not {self.family.name}'s attention head: "
                              "set caseless off")
        fold = CaseFold.from_chars(self.charset.chars)
        folded = {Path(self.ctx.data.train[i].path).resolve() for i in chosen}
        if val_scans and Path(val_scans[0][1]).resolve().parent in folded:  # a split of a folded dataset
            self.default_metric = "cer_ci"  # its labels ignore case too: pick checkpoints without it
        self.ctx.message(f"case-insensitive training on {', '.join(names[i] for i in chosen)}: "
                         + ("its labels are all upper case, so " if cfg.caseless == "auto" else "")
                         + "a letter's upper and lower case count as one there (caseless off to learn the "
                           "labels' case as written)", "info")
        return fold, frozenset(chosen)

    def _lever_text(self) -> str:
        cfg, parts = self.ctx.config, []
        if self.replay_sources:
            parts.append(f"replay: {cfg.replay:.0%} of every batch are general text lines")
        if cfg.distill > 0:
            parts.append(f"distillation from {cfg.origin} on them (weight {cfg.distill:g})")
        if cfg.l2sp > 0:
            parts.append(f"L2-SP toward {cfg.origin}'s weights (weight {cfg.l2sp:g})")
        return "forgetting levers: " + "; ".join(parts)

    def _freeze(self, cfg, device: str) -> bool:
        if cfg.freeze_feature_extractor:
            return True
        if cfg.cpu_recipe and device == "cpu" and cfg.origin.strip() != "scratch":
            self.ctx.message("CPU recipe: the pretrained convolutional features stay fixed, the BiLSTM and head "
                             "train (several times faster per step; set cpu_recipe false to train everything)",
                             "info")
            return True
        return False

    def _freeze_rnn(self, cfg, frozen: bool) -> None:
        """Keep the first ``frozen_rnn_layers`` BiLSTM layers fixed (only with frozen features: a layer
        between trained ones would still pass gradients, saving nothing)."""
        from torch import nn

        n = cfg.frozen_rnn_layers
        if not n:
            return
        layers = getattr(self.model, "SequenceModeling", None)
        if not frozen or not isinstance(layers, nn.Sequential):
            raise ConfigError("frozen_rnn_layers needs an easyocr-crnn model with frozen features (the CPU recipe "
                              "or freeze_feature_extractor): set it to 0")
        if n >= len(layers):
            raise ConfigError(f"frozen_rnn_layers {n} leaves no BiLSTM layer of the {len(layers)} to train: use at "
                              f"most {len(layers) - 1}")
        for p in layers[:n].parameters():
            p.requires_grad_(False)
        self.ctx.message(f"the first {n} BiLSTM layer(s) stay fixed too (frozen_rnn_layers)", "info")

    def _feature_cache(self, cfg, frozen: bool) -> Optional[FeatureCache]:
        """A cache of the frozen features when they are the same at every pass, else None (and why)."""
        import torch.distributed as dist

        self.variants = max(0, cfg.augment_variants)
        self._known = None
        if cfg.feature_cache_mb <= 0 or not frozen or not self.family.caches_features:
            return None
        variants = AUTO_VARIANTS if cfg.augment_variants < 0 and cfg.augment.enabled else self.variants
        why = ("augmentation changes the lines at every pass (augment_variants 0)"
               if cfg.augment.enabled and not variants else
               "distillation runs the origin on the images" if cfg.distill > 0 else
               "torch.compile compiles the whole model" if cfg.compile else
               "torchrun ranks run the whole model" if dist.is_available() and dist.is_initialized() else "")
        if why:
            self.ctx.message(f"feature cache off: {why}", "info")
            return None
        self.variants = variants
        said = (f"; augmentation: {variants} fixed variant(s) per line, used in turn (augment_variants)"
                + ("; replay lines keep one" if self.replay_sources and variants else "")
                if cfg.augment.enabled else "")
        self.ctx.message(f"feature cache: each line's frozen convolutional features are computed once and "
                         f"reused (up to {cfg.feature_cache_mb} MB of memory; feature_cache_mb 0 turns it off)"
                         + said, "info")
        loader = LineBatches(self.train_sets, [], cfg.augment if cfg.augment.enabled else None, cfg.seed, 0,
                             self._to_tensor, per_line=True, variants=variants, fixed_sources=self.replay_sources)

        def width(pos: int) -> int:
            i, local = loader.locate(pos)
            return self.train_sets[i].widths[local]

        def fixed(pos: int) -> int:
            return int(loader.locate(pos)[0] in loader.fixed_sources)

        cache = FeatureCache(cfg.feature_cache_mb * 2 ** 20, self.family, self.ctx.message,
                             batch_chunks(self._plans(cfg), width, self.height, fixed), loader.line,
                             loader.row_variant, self._int8_calibration(cfg))
        # rows the cache holds are not decoded again (workers 0 only: a worker sees a copy)
        self._known = KnownRows(cache.holds) if cfg.workers == 0 else None
        return cache

    def _int8_calibration(self, cfg) -> tuple[int, ...]:
        """Positions of the lines an int8 feature copy is calibrated on (the first two batches of the
        run), or () for float32 features (and on a GPU, where int8 buys nothing: said once)."""
        if cfg.feature_precision != "int8":
            return ()
        if str(self.ctx.device) != "cpu":
            self.ctx.message("feature_precision int8 is for the CPU: the features stay float32 on "
                             f"{self.ctx.device}", "info")
            return ()
        self.ctx.message("feature_precision int8: the training lines' frozen features come from an 8-bit copy "
                         "of the VGG (validation and the exported model stay float32)", "info")
        first = self.plan_epoch(0, cfg.batch_size, cfg.seed)
        return tuple(pos for batch in first[:2] for pos in batch)

    def _plans(self, cfg):
        """The epoch plans of the whole run (the trainer plans each epoch the same way)."""
        from ..trainstate import run_length

        first = self.plan_epoch(0, cfg.batch_size, cfg.seed)
        epochs = run_length(cfg.max_steps, cfg.max_epochs, len(first))[1]
        yield first
        for epoch in range(1, min(epochs, 100)):
            yield self.plan_epoch(epoch, cfg.batch_size, cfg.seed)

    def _adapt(self, loaded, chars: str, adapt_charset):
        mode = self.ctx.config.charset_mode
        before = len(loaded.charset)
        loaded = adapt_charset(loaded, chars, mode)
        if mode == "extend" and len(loaded.charset) > before:
            added = loaded.charset.chars[before:]
            self.ctx.message(f"charset extended by {len(added)} character(s) {added!r} "
                             f"({before} -> {len(loaded.charset)})", "info")
        return loaded

    @staticmethod
    def _check_not_empty(train_scans, val_scans) -> None:
        for path, labels, _ in train_scans:
            if not labels:
                raise DatasetError(f"{path} is empty: generate or import training lines first")
        for name, path, labels, _ in val_scans:
            if not labels:
                raise DatasetError(f"validation set {name!r} ({path}) is empty: validation needs at least one "
                                   "line; regenerate the dataset with val_fraction > 0")

    def _read_lines(self, train_scans, val_scans) -> None:
        cfg, ctx = self.ctx.config, self.ctx
        codec = label_codec(self.loaded)
        train_scans = [(p, codec.normalize(labels), shapes) for p, labels, shapes in train_scans]
        val_scans = [(n, p, codec.normalize(labels), shapes) for n, p, labels, shapes in val_scans]
        self.rejected: list[dict] = []
        multi = len(train_scans) > 1
        self.train_sets = [filter_lines(f"train{i}" if multi and i else "train", path, labels, shapes, codec,
                                        self.height, cfg.charset_mode, self.rejected)
                           for i, (path, labels, shapes) in enumerate(train_scans)]
        self.val_sets: dict[str, LineSet] = {}
        for name, path, labels, shapes in val_scans:
            lines = filter_lines(name, path, labels, shapes, codec, self.height, cfg.charset_mode, self.rejected)
            self.val_sets[name] = lines.head(cfg.val_limit) if cfg.val_limit else lines
        ctx.write_rejected(self.rejected)
        if self.rejected:
            examples = "; ".join(f"{r['split']}[{r['index']}] {r['label']!r}: {r['reason']}" for r in self.rejected[:3])
            ctx.message(f"{len(self.rejected)} label(s) cannot be used and are listed in the run's rejected.csv "
                        f"(e.g. {examples})", "warning")
        for lines in self.train_sets:
            if len(lines.indices) < MIN_TRAIN_SAMPLES:
                raise DatasetError(
                    f"only {len(lines.indices)} usable training line(s) in {lines.path} "
                    f"({sum(r['split'].startswith('train') for r in self.rejected)} rejected, see the run's "
                    f"rejected.csv): at least {MIN_TRAIN_SAMPLES} are needed; add data or use charset_mode extend")
        for name, lines in self.val_sets.items():
            if not lines.indices:
                raise DatasetError(f"no usable line in validation set {name!r} ({lines.path}; all rejected, see "
                                   "the run's rejected.csv): fix the labels or use charset_mode extend")
        self.weights = [s.weight for s in ctx.data.train]
        self._val_cache: dict[str, list[dict]] = {}

    def data_fingerprint(self) -> dict:
        from ..dataset import Dataset

        return {s.path: Dataset(s.path).manifest.get("content_hash") for s in self.ctx.data.train}

    def describe(self) -> str:
        counts = [len(s.indices) for s in self.train_sets]
        vals = ", ".join(f"{n} ({len(s.indices)} lines)" for n, s in self.val_sets.items())
        return (f"training {describe(self.ctx.data, counts)}, validating on {vals}; charset "
                f"{len(self.charset)} characters; origin {self.ctx.config.origin}")

    def status_fields(self) -> dict:
        own = [s for i, s in enumerate(self.train_sets) if i not in self.replay_sources]
        replay = [s for i, s in enumerate(self.train_sets) if i in self.replay_sources]
        return {"charset_size": len(self.charset), "train_samples": sum(len(s.indices) for s in own),
                "replay_samples": sum(len(s.indices) for s in replay),
                "val_samples": len(next(iter(self.val_sets.values())).indices), "rejected": len(self.rejected),
                "val_sets": list(self.val_sets)}

    # ---- batches
    def plan_epoch(self, epoch: int, batch_size: int, seed: int) -> list[list[int]]:
        return plan_mixture(self.train_sets, self.weights, batch_size, seed, epoch)

    def batch_source(self, batches: Sequence[list[int]], epoch: int, seed: int):
        cfg = self.ctx.config
        import torch.distributed as dist

        ddp = dist.is_available() and dist.is_initialized()
        if self.features is not None and self.features.lines:
            self.ctx.message(f"epoch {epoch + 1}: {self.features.describe()}", "info")
        return LineBatches(self.train_sets, batches, cfg.augment if cfg.augment.enabled else None,
                           seed, epoch, self._to_tensor, group_sources=not ddp, per_line=self.features is not None,
                           variants=self.variants, known=self._known,
                           fixed_sources=self.replay_sources if self.features is not None else frozenset())

    def _to_tensor(self, grays):
        return self.family.batch_tensor(grays, self.options)

    def slice_batch(self, batch: dict, start: int, stop: int) -> dict:
        """Rows start..stop of a batch (after an out-of-memory halving), padding groups included."""
        if "lines" in batch:  # per-line tensors slice as lists; the part is one group
            return {**super().slice_batch(batch, start, stop), "groups": None}
        if not isinstance(batch["images"], list):
            return super().slice_batch(batch, start, stop)
        part = super().slice_batch({k: v for k, v in batch.items() if k != "images"}, start, stop)
        images, first = [], 0
        for tensor in batch["images"]:
            a, b = max(start, first), min(stop, first + tensor.shape[0])
            if a < b:
                images.append(tensor[a - first:b - first])
            first += tensor.shape[0]
        part["images"] = images
        return part

    def forward(self, net, batch: dict, device: str):
        """The model's outputs for the batch: one tensor, or one per padding group (a list, in the
        batch's row order; see :func:`ocrtrain.tasks.lines.padding_groups`)."""
        def run(images, targets):
            images = _channels(images.to(device, non_blocking=True), self.ctx.config.channels_last)
            return self.family.train_forward(net, images, targets)

        if "lines" in batch:
            return self._forward_cached(net, batch, device)
        if not isinstance(batch["images"], list):
            return run(batch["images"], batch["targets"])
        outputs, start = [], 0
        for images in batch["images"]:
            outputs.append(run(images, batch["targets"][start:start + images.shape[0]]))
            start += images.shape[0]
        return outputs

    def _forward_cached(self, net, batch: dict, device: str):
        """The head on the cached features (:mod:`ocrtrain.tasks.feature_cache`), one pass per group."""
        rows = self.features.rows(self.model, batch["positions"], batch["lines"], batch.get("variant", 0))
        sizes = batch["groups"] or [len(rows)]
        outputs, start = [], 0
        for n in sizes:
            feats = stack_rows(rows[start:start + n]).to(device, non_blocking=True)
            outputs.append(self.family.head_forward(net, feats))
            start += n
        return outputs if batch["groups"] else outputs[0]

    def loss(self, outputs, batch: dict):
        """The batch-mean loss (groups weighted by their rows: the mean a single tensor gives), plus
        the anchor's L2-SP and distillation terms."""
        groups = _groups(outputs, batch)
        n = len(batch["targets"])
        loss = sum(self._group_loss(out, batch, a, b) * ((b - a) / n) for out, _, a, b in groups)
        if self.anchor is None:
            return loss
        if self.anchor.l2sp > 0:
            loss = loss + self.anchor.penalty(self.model).to(loss.device)
        if self.anchor.distill > 0:
            sources = batch.get("sources", ())
            parts = []
            for out, images, a, b in groups:
                rows = [r - a for r in range(a, b) if sources and sources[r] in self.replay_sources]
                if rows:
                    parts.append((len(rows), self.anchor.distill_loss(out, images.to(self.ctx.device,
                                                                                       non_blocking=True), rows)))
            if parts:
                total = sum(k for k, _ in parts)
                loss = loss + sum(term * (k / total) for k, term in parts).to(loss.device)
        return loss

    def _group_loss(self, out, batch: dict, a: int, b: int):
        """Mean loss of rows a..b, case-folded on the rows of caseless sources."""
        targets, sources = batch["targets"][a:b], batch.get("sources") or [None] * b
        folded = [r for r in range(b - a) if sources[a + r] in self.caseless]
        if not folded:
            return self.family.loss(out, targets)
        plain = [r for r in range(b - a) if sources[a + r] not in self.caseless]
        loss = self.family.loss(out[folded], [targets[r] for r in folded], fold=self.fold) * (len(folded) / (b - a))
        if plain:
            loss = loss + self.family.loss(out[plain], [targets[r] for r in plain]) * (len(plain) / (b - a))
        return loss

    # ---- validation
    def _val_batches(self, name: str) -> list[dict]:
        from ..trainstate import sorted_batches

        if name in self._val_cache:
            return self._val_cache[name]
        lines = self.val_sets[name]
        source = LineBatches([lines], sorted_batches(lines.widths, max(self.ctx.config.batch_size, 16)),
                             None, self.ctx.config.seed, 0, self._to_tensor)
        batches = [source[i] for i in range(len(source))]
        cached = sum(_image_bytes(b) for batches_ in self._val_cache.values() for b in batches_)
        if cached + sum(_image_bytes(b) for b in batches) <= VAL_CACHE_BYTES:
            self._val_cache[name] = batches
        return batches

    def validate(self, model, autocast: Callable) -> dict[str, dict]:
        return {name: self._validate_set(model, autocast, name) for name in self.val_sets}

    def _validate_set(self, model, autocast: Callable, name: str) -> dict:
        import torch

        from ..metrics import summarize

        model.eval()
        preds: list[str] = []
        labels: list[str] = []
        losses: list[float] = []
        with torch.no_grad():
            for i, batch in enumerate(self._val_batches(name)):
                with autocast():
                    if self.features is not None:  # the same numbers as infer_forward, VGG run once
                        feats = self.features.val_features(model, (name, i), batch["images"])
                        if (name, i) in self.features.val:
                            batch["images"] = None  # its features are kept: the pixels are not needed again
                        outputs = self.family.head_forward(model, feats)
                    else:
                        outputs = self.family.infer_forward(model, batch["images"].to(self.ctx.device))
                per_sample = self.family.loss(outputs, batch["targets"], each=True)
                lengths = torch.tensor([max(1, len(t)) for t in batch["targets"]], dtype=torch.float32)
                losses.extend((per_sample.float().cpu() / lengths).tolist())
                preds.extend(p.text for p in self.family.decode(outputs, self.charset))
                labels.extend(batch["labels"])
        model.train()
        metrics = summarize(preds, labels)
        loss = float(np.mean(losses)) if losses else None
        metrics["val_loss"] = loss if loss is not None and np.isfinite(loss) else None
        return metrics

    # ---- checkpoints
    def save_checkpoint(self, path: Path, step: int, metrics: dict, extra: Optional[dict] = None) -> None:
        from .. import checkpoint

        checkpoint.save_checkpoint(path, self.model, self.charset, self.model_config, step, metrics, extra,
                                   family=self.family)

    def load_resume_state(self, path: Path) -> dict:
        from ..checkpoint import load_checkpoint

        return load_checkpoint(path)


def _image_bytes(batch: dict) -> int:
    return 0 if batch["images"] is None else batch["images"].numel() * 4


def _channels(images, channels_last: bool):
    import torch

    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def _groups(outputs, batch: dict) -> list[tuple]:
    """(outputs, images, first row, end row) per padding group of a batch (one when not grouped)."""
    if not isinstance(outputs, list):
        return [(outputs, batch.get("images"), 0, len(batch["targets"]))]
    images = batch["images"] if "images" in batch else [None] * len(outputs)
    groups, start = [], 0
    for out, part in zip(outputs, images):
        groups.append((out, part, start, start + out.shape[0]))
        start += out.shape[0]
    return groups


class _Codec:
    """The label rules filter_lines applies, from the model family."""

    def __init__(self, family, charset, options):
        self.family, self.charset, self.options = family, charset, options

    def normalize(self, labels: list[str]) -> list[str]:
        return [self.family.normalize_label(label, self.options) for label in labels]

    def missing(self, label: str) -> set:
        return self.charset.missing(label)

    def encode(self, label: str) -> list[int]:
        return self.family.encode(self.charset, label)

    def check_label(self, label: str, shape: tuple[int, int]) -> Optional[str]:
        return self.family.check_label(label, shape, self.options)


def label_codec(loaded) -> _Codec:
    """The label rules (charset, encoding, length) the task applies for a loaded model."""
    return _Codec(loaded.family, loaded.charset, loaded.family_options)
