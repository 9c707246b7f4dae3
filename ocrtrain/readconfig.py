"""How a trained model reads lines outside training: one frozen config for ``eval``, ``predict`` and
the parity check, so their defaults live in one place (the CLI options come from its fields, and the
library's ``batch_size=`` and parity ``limit=`` defaults are ``ReadConfig.batch_size`` and
``ReadConfig.parity_limit``). The library's ``device=`` stays ``"cpu"``: a function call takes a GPU
only when asked, while the CLI's ``--device`` is ``auto``, and so is the dashboard's Compare tab, whose
device choices are :data:`DEVICE_CHOICES` and whose sample count is ``ReadConfig.compare_limit``.

>>> ReadConfig().device, ReadConfig().batch_size
('auto', 32)
>>> ReadConfig(device="cpu").resolved_device()
'cpu'
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .config import Config, check

__all__ = ["ReadConfig", "DEVICE_CHOICES"]

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
        from .train import resolve_device

        return resolve_device(self.device)
