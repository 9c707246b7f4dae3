"""Forgetting levers that hold a fine-tune near its origin model: L2-SP and distillation.

- **L2-SP** (Li et al. 2018): ``l2sp / 2 * sum ||w - w0||^2`` over the trainable weights, where
  ``w0`` are the origin's weights. Unlike weight decay (pull toward 0) it pulls toward what the
  model already knew.
- **Distillation** (learning without forgetting): on the *replay* lines of each batch (general
  text the origin reads, :func:`ocrtrain.datamix.with_replay`), the student's per-frame character
  distribution is pulled toward the frozen origin's with a temperature-2 KL divergence.

The anchor is the origin loaded again, unadapted (loading is deterministic), so a resumed run
rebuilds exactly the same anchor. Characters the charset added have no origin counterpart: the
head's extra rows are left out of L2-SP and the KL compares the origin's classes only, which is
why both levers need a charset whose first classes are the origin's (charset_mode extend or keep).

>>> # anchor = OriginAnchor.build(cfg, student_loaded, device="cpu")
>>> # loss = ctc + anchor.penalty(model) + anchor.distill_loss(logits, images, rows)
"""
from __future__ import annotations

from typing import Optional, Sequence

from ..errors import ConfigError

__all__ = ["OriginAnchor", "DISTILL_TEMPERATURE"]

DISTILL_TEMPERATURE = 2.0


class OriginAnchor:
    """The frozen origin model and its weights, for :meth:`penalty` (L2-SP) and :meth:`distill_loss`."""

    def __init__(self, model, num_classes: int, l2sp: float, distill: float, family):
        self.model, self.num_classes, self.l2sp, self.distill, self.family = model, num_classes, l2sp, distill, family
        self.weights = {name: p.detach().clone() for name, p in model.named_parameters()}

    @classmethod
    def build(cls, config, loaded, device: str) -> Optional["OriginAnchor"]:
        """The anchor for `config` (None when l2sp and distill are 0); `loaded` is the student's model."""
        if config.l2sp <= 0 and config.distill <= 0:
            return None
        from ..origins import load_origin

        if config.origin.strip() == "scratch":
            raise ConfigError("l2sp and distill hold the model near its origin, but origin scratch has no "
                              "knowledge to keep: set l2sp 0 and distill 0, or start from english_g2")
        origin = load_origin(config.origin, device="cpu", seed=config.seed)
        old, new = origin.charset.chars, loaded.charset.chars
        if new[:len(old)] != old or type(origin.family) is not type(loaded.family):
            raise ConfigError("l2sp and distill compare the model with its origin class by class, but this run's "
                              f"charset does not start with the origin's {len(old)} characters (charset_mode "
                              f"{config.charset_mode}): use charset_mode extend or keep, or set l2sp 0 and distill 0")
        if config.distill > 0 and origin.family.name != "easyocr-crnn":
            raise ConfigError(f"distill compares per-frame CTC outputs and supports the easyocr-crnn family, not "
                              f"{origin.family.name}: set distill 0 (l2sp works with every family)")
        model = origin.model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return cls(model, origin.family.num_classes(origin.charset), config.l2sp, config.distill, origin.family)

    def penalty(self, student):
        """``l2sp / 2 * sum ||w - w0||^2`` over `student`'s trainable weights (a 0-dim tensor)."""
        import torch

        total = None
        for name, p in student.named_parameters():
            w0 = self.weights.get(name)
            if not p.requires_grad or w0 is None:
                continue
            if w0.device != p.device:
                w0 = self.weights[name] = w0.to(p.device)
            w = p if p.shape == w0.shape else _rows(p, w0)
            if w is None:
                continue
            term = (w.float() - w0.float()).pow(2).sum()
            total = term if total is None else total + term
        if total is None:
            return torch.zeros(())
        return 0.5 * self.l2sp * total

    def distill_loss(self, logits, images, rows: Sequence[int]):
        """``distill * T^2 * KL(origin || student)`` per output frame on the batch rows `rows`
        (the replay lines), over the origin's classes; 0 when `rows` is empty."""
        import torch

        if self.distill <= 0 or not rows:
            return torch.zeros((), device=logits.device)
        index = torch.tensor(list(rows), device=logits.device)
        t = DISTILL_TEMPERATURE
        with torch.no_grad():
            teacher = self.family.infer_forward(self.model, images.index_select(0, index.to(images.device)))
            target = (teacher.float()[..., :self.num_classes] / t).log_softmax(-1)
        student = (logits.index_select(0, index).float()[..., :self.num_classes] / t).log_softmax(-1)
        if student.shape != target.shape:
            raise RuntimeError(f"distillation: student output {tuple(student.shape)} and origin output "
                               f"{tuple(target.shape)} differ; the families' output lengths must match")
        kl = torch.nn.functional.kl_div(student, target, log_target=True, reduction="none").sum(-1)
        return self.distill * t * t * kl.mean()


def _rows(p, w0):
    """The first rows of a grown head weight matching the origin's `w0`, else None."""
    if p.dim() != w0.dim() or p.shape[1:] != w0.shape[1:] or p.shape[0] < w0.shape[0]:
        return None
    return p[:w0.shape[0]]
