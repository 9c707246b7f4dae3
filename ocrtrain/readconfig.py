"""How a trained model reads lines outside training: one frozen config for ``eval``, ``predict`` and
the parity check, so their defaults live in one place (the CLI options come from its fields, and the
library's ``device=``, ``batch_size=`` and parity ``limit=`` defaults are ``ReadConfig.device``,
``ReadConfig.batch_size`` and ``ReadConfig.parity_limit``). The device is ``auto`` everywhere, as in
training: a GPU when torch sees one, else the CPU (:func:`resolve_read_device`; a qint8 quantized
reading stays on the CPU). The dashboard's Compare tab offers :data:`DEVICE_CHOICES` and reads
``ReadConfig.compare_limit`` samples.

>>> ReadConfig().device, ReadConfig().batch_size
('auto', 32)
>>> ReadConfig(device="cpu").resolved_device()
'cpu'
>>> resolve_read_device("auto", quantize=True)
'cpu'
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .config import Config, check

__all__ = ["ReadConfig", "DEVICE_CHOICES", "resolve_read_device"]

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
#: The devices a form offers (``cuda:N`` is typed on the CLI).
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ReadConfig(Config):
    """Device, batching and Reader compatibility of a reading model."""

    device: str = field(default="auto", metadata={"help": "auto (a GPU when torch sees one, else cpu), cpu, cuda or cuda:N"})
    batch_size: int = field(default=32, metadata={"help": "lines per forward pass"})
    reader_compatible: bool = field(default=False, metadata={
        "help": "apply EasyOCR Reader's low-confidence contrast retry, as Reader.recognize does"})
    parity_limit: int = field(default=300, metadata={"help": "lines compared with easyocr.Reader by a parity check",
                                                     "cli": False})
    compare_limit: int = field(default=200, metadata={"help": "test lines the dashboard's Compare tab reads "
                                                              "before vs after (0 = all)", "cli": False})

    def validate(self) -> None:
        check(bool(_DEVICE.match(self.device)), f"device {self.device!r} is not one of auto, cpu, cuda, cuda:N: "
                                                "pick one of those")
        check(1 <= self.batch_size <= 4096, f"batch_size must be in 1..4096, got {self.batch_size}")
        check(self.parity_limit >= 1, f"parity_limit must be >= 1, got {self.parity_limit}")
        check(self.compare_limit >= 0, f"compare_limit must be >= 0 (0 = all), got {self.compare_limit}")

    def resolved_device(self) -> str:
        """The torch device to use ("auto" -> "cuda:0" when available, else "cpu")."""
        return resolve_read_device(self.device)


def resolve_read_device(device, quantize: bool = False) -> str:
    """The device a reading runs on: ``auto`` is ``cuda:0`` when torch sees a GPU, else ``cpu``; a
    requested CUDA device is checked. With `quantize`, ``auto`` is ``cpu`` (qint8 dynamic quantization
    has CPU kernels only) and any other device is kept for the Predictor to name the conflict.
    `device` may be a ``torch.device``."""
    from .train import resolve_device

    device = str(device)
    if quantize:
        return "cpu" if device == "auto" else device
    return resolve_device(device)
