"""ocrtrain checkpoint files: one ``torch.save``d dict of plain data, loadable with ``weights_only=True``.

Layout (``format: ocrtrain-checkpoint/1``)::

    {"format", "family": str, "model_config": dict, "charset": str, "state_dict": {name: tensor},
     "step": int, "metrics": dict, ...extra}   # last.pt adds optimizer, scheduler, rng, epoch, samples_seen

``family`` names the model family (:mod:`ocrtrain.families`) and ``model_config`` holds its options;
checkpoints written before families existed have no ``family`` and read as ``easyocr-crnn``.

Writes are atomic (temporary file + ``os.replace``), so a crash never leaves half a checkpoint.

>>> # save_checkpoint("run/checkpoints/best.pt", model, charset, ModelConfig(), step=100, metrics={"cer": 0.02})
>>> # ckpt = load_checkpoint("run/checkpoints/best.pt"); model, charset, cfg = model_from_checkpoint(ckpt)
"""
from __future__ import annotations

import pickle
import re
import struct
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch

from torch import nn

from .charset import Charset
from .config import Config
from .errors import ConfigError, ModelError
from .fsutil import write_atomic
from .families import DEFAULT_FAMILY, ModelFamily, family_of_model, get_family
from .model import strip_module_prefix

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "checkpoint_family", "model_from_checkpoint",
           "read_torch_file", "check_finite_weights"]

CHECKPOINT_FORMAT = "ocrtrain-checkpoint/1"
_BASE_KEYS = ("format", "model_config", "charset", "state_dict", "step", "metrics")
_RESERVED_KEYS = (*_BASE_KEYS, "family")
_PLAIN = (str, bytes, int, float, complex, bool, type(None), torch.Size, torch.dtype, torch.device)


def _check_plain(value: Any, where: str) -> None:
    """Reject objects a weights-only load would refuse (NumPy arrays, custom classes)."""
    # Exact types: NumPy scalars subclass float/int but a weights-only load refuses them.
    if isinstance(value, torch.Tensor) or type(value) in _PLAIN:
        return
    if type(value) in (dict, OrderedDict):
        for k, v in value.items():
            if type(k) not in _PLAIN:
                raise ModelError(f"checkpoint entry {where} has a key of type {type(k).__name__}: "
                                 "use str/int keys so weights_only loading accepts it")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(value) in (list, tuple, set, frozenset):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise ModelError(f"checkpoint entry {where} is a {type(value).__module__}.{type(value).__qualname__}, "
                     "which torch.load(weights_only=True) refuses: store tensors, numbers, text, "
                     "lists or dicts (e.g. torch.from_numpy(array), or state.tolist())")


def _plain_number(value: Any) -> Any:
    """NumPy/0-d tensor metric values -> Python numbers (metric code often yields np.float64)."""
    if type(value) not in _PLAIN and hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def check_finite_weights(state_dict: Mapping[str, Any], where: str) -> None:
    """ModelError when a floating-point tensor of `state_dict` holds NaN or inf.

    Such a model reads nothing (CER 1.0) yet would train, "finish" and export like a good one.
    """
    bad = [name for name, t in state_dict.items()
           if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ModelError(f"{where} has weights that are not finite (NaN or inf) in {len(bad)} of {len(state_dict)} "
                         f"tensors, e.g. {', '.join(bad[:3])}: the model is broken (a diverged run or a damaged "
                         "file); use an earlier checkpoint, or train again with a lower lr or grad_clip")


def save_checkpoint(path: Union[str, Path], model: nn.Module, charset: Charset,
                    model_config: Union[Config, Mapping[str, Any]], step: int, metrics: Mapping[str, Any],
                    extra: Optional[Mapping[str, Any]] = None,
                    family: Union[str, ModelFamily, None] = None) -> Path:
    """Write a checkpoint atomically; `extra` adds resumable state (optimizer, scheduler, rng...).

    `model_config` is the family's options (Config or dict); `family` defaults to the family
    that builds `model`.
    """
    path = Path(path)
    # DataParallel (.module) and torch.compile (._orig_mod) wrappers would prefix every key.
    for attr in ("_orig_mod", "module", "_orig_mod"):
        inner = getattr(model, attr, None)
        if isinstance(inner, torch.nn.Module):
            model = inner
    family = get_family(family, model_config) if family is not None else family_of_model(model)
    needed = family.num_classes(charset)
    if family.head_size(model) != needed:
        raise ModelError(f"model has {family.head_size(model)} classes but charset {len(charset)} characters "
                         f"({family.special_classes} = {needed} classes in {family.name}): adapt the charset before saving")
    data: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "family": family.name,
        "model_config": family.options(model_config).to_dict(),
        "charset": charset.chars,
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
        "step": int(step),
        "metrics": {str(k): _plain_number(v) for k, v in (metrics or {}).items()},
    }
    # Never write a diverged model: the earlier file stays, and the run ends failed, saying why.
    check_finite_weights(data["state_dict"], f"the model of step {int(step)} (to be saved as {path})")
    for key, value in (extra or {}).items():
        if key in _RESERVED_KEYS:
            raise ConfigError(f"extra checkpoint key {key!r} would replace a base entry: use another name")
        data[key] = value
    _check_plain(data, "checkpoint")
    return write_atomic(path, lambda fh: torch.save(data, fh))


def read_torch_file(path: Union[str, Path], what: str = "model file") -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")`` with readable ModelErrors."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist: check the path (or train/export it first)")
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files it is about to refuse anyway.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise ModelError(
                f"{path} holds a pickled {found.group(1)} object, which a safe (weights_only) load refuses: "
                "it is not a plain checkpoint/state dict; re-save only the weights with "
                "torch.save(model.state_dict(), path)") from None
        raise ModelError(f"{path} is not a readable PyTorch file (a raw pickle or other data the safe "
                         "weights_only loader refuses): use a file written by torch.save") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError,
            KeyError, IndexError, TypeError, AttributeError, struct.error, OverflowError) as exc:
        # Damaged or foreign bytes fail anywhere in torch's unpickler (a memo lookup, a short
        # struct, a zip record of the wrong type): each is "not readable", never a traceback.
        raise ModelError(f"{path} is not a readable PyTorch file ({type(exc).__name__}: {str(exc)[:200]}): "
                         "it is truncated or of another format; use the original file") from None


def load_checkpoint(path: Union[str, Path]) -> dict:
    """Read and check an ocrtrain checkpoint (weights_only); ModelError says what was found instead."""
    path = Path(path)
    data = read_torch_file(path, "checkpoint")
    if not isinstance(data, dict):
        raise ModelError(f"{path} holds a {type(data).__name__}, not an ocrtrain checkpoint dict: "
                         "pass a checkpoint written by ocrtrain (RUN/checkpoints/best.pt)")
    if data.get("format") != CHECKPOINT_FORMAT:
        if data and all(isinstance(v, torch.Tensor) for v in data.values()):
            raise ModelError(
                f"{path} is a bare state dict ({len(data)} tensors, e.g. {next(iter(data))!r}), not an "
                "ocrtrain checkpoint: load it as an origin instead, e.g. 'easyocr:DIR/NAME' (with NAME.yaml) "
                "or 'dtrb:FILE:CHARSET'")
        found = data.get("format", f"keys {sorted(map(str, data))[:6]}")
        raise ModelError(f"{path} is not an ocrtrain checkpoint (expected format {CHECKPOINT_FORMAT!r}, "
                         f"found {found!r}): pass a checkpoint written by ocrtrain")
    missing = [k for k in _BASE_KEYS if k not in data]
    if missing:
        raise ModelError(f"{path} lacks checkpoint entries {missing}: the file is damaged; use another version")
    try:
        family = checkpoint_family(data)
        config = family.options(data["model_config"])
        charset = Charset(data["charset"])
    except ConfigError as exc:
        raise ModelError(f"{path} has an invalid family, model_config or charset ({exc}): "
                         "use another version") from None
    family.check_state_dict(config, family.num_classes(charset), strip_module_prefix(data["state_dict"]), str(path))
    return data


def checkpoint_family(checkpoint: Mapping[str, Any]) -> ModelFamily:
    """The model family a checkpoint dict records (``easyocr-crnn`` when it records none)."""
    return get_family(checkpoint.get("family") or DEFAULT_FAMILY, checkpoint.get("model_config") or {})


def model_from_checkpoint(checkpoint: Mapping[str, Any], device: Union[str, torch.device] = "cpu"
                          ) -> tuple[nn.Module, Charset, Config]:
    """Build the model of a loaded checkpoint dict (strict weight load): (model, charset, options).

    The family is :func:`checkpoint_family`'s; options are its Config (``ModelConfig`` for
    ``easyocr-crnn``).
    """
    family = checkpoint_family(checkpoint)
    config = family.options(checkpoint["model_config"])
    charset = Charset(checkpoint["charset"])
    model = family.build(config, family.num_classes(charset))
    model.load_state_dict(strip_module_prefix(checkpoint["state_dict"]), strict=True)
    return model.to(device), charset, config
