"""Foundation: Config keys, coercion, freezing, YAML/JSON round trips and derived CLI options."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from ocrtrain.config import Config, add_config_arguments, check, config_from_args
from ocrtrain.errors import ConfigError, OcrtrainError


@dataclass(frozen=True)
class Inner(Config):
    rate: float = field(default=0.5, metadata={"help": "a rate in %"})
    on: bool = field(default=True, metadata={"help": "switch"})


@dataclass(frozen=True)
class Demo(Config):
    steps: int = field(default=10, metadata={"help": "how many steps"})
    name: str = field(default="run", metadata={"help": "a name"})
    mode: Literal["fast", "slow"] = field(default="fast", metadata={"help": "speed"})
    device: str = field(default="cpu", metadata={"help": "device", "choices": ("cpu", "cuda")})
    fonts: tuple[str, ...] = field(default=("a.ttf",), metadata={"help": "font files"})
    limit: Optional[int] = field(default=None, metadata={"help": "optional cap"})
    inner: Inner = field(default_factory=Inner, metadata={"help": "nested"})
    hidden: int = field(default=1, metadata={"help": "not on the CLI", "cli": False})

    def validate(self) -> None:
        check(self.steps > 0, f"steps must be positive, got {self.steps}")


def test_unknown_key_did_you_mean():
    with pytest.raises(ConfigError) as err:
        Demo.from_dict({"stpes": 3})
    msg = str(err.value)
    assert "'stpes'" in msg and "did you mean 'steps'" in msg and "valid keys" in msg
    assert isinstance(err.value, OcrtrainError) and isinstance(err.value, ValueError)
    with pytest.raises(ConfigError, match="did you mean 'rate'"):
        Demo.from_dict({"inner": {"rte": 1}})


def test_type_coercion():
    d = Demo.from_dict({"steps": "3", "fonts": "x.ttf, y.ttf", "limit": "7",
                        "inner": {"rate": "0.25", "on": "no"}})
    assert d.steps == 3 and d.fonts == ("x.ttf", "y.ttf") and d.limit == 7
    assert d.inner == Inner(rate=0.25, on=False)
    assert Demo(steps=4.0).steps == 4 and isinstance(Demo(steps=4.0).steps, int)
    assert Demo.from_dict({"fonts": ["z.ttf"]}).fonts == ("z.ttf",)
    for bad, match in [({"steps": "3.5"}, "integer"), ({"steps": True}, "integer"),
                       ({"inner": {"on": "maybe"}}, "true or false"), ({"inner": {"rate": "fast"}}, "number"),
                       ({"mode": "medium"}, "not one of"), ({"device": "tpu"}, "not one of"),
                       ({"name": None}, "must not be empty"), ({"inner": 3}, "mapping"),
                       ({"steps": 0}, "positive"), ({"name": 5}, "text")]:
        with pytest.raises(ConfigError, match=match):
            Demo.from_dict(bad)


def test_frozen_and_replace():
    d = Demo()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.steps = 5
    e = d.replace(steps=5)
    assert e.steps == 5 and d.steps == 10
    with pytest.raises(ConfigError, match="positive"):
        d.replace(steps=-1)


def test_yaml_and_json_round_trip(tmp_path):
    d = Demo(steps=7, name="Brød", fonts=("a.ttf", "b.ttf"), limit=3, inner=Inner(rate=0.1, on=False))
    (tmp_path / "c.yaml").write_text(d.to_yaml(), encoding="utf-8")
    (tmp_path / "c.json").write_text(d.to_json(), encoding="utf-8")
    assert Demo.from_file(tmp_path / "c.yaml") == d
    assert Demo.from_file(tmp_path / "c.json") == d
    assert "Brød" in d.to_yaml()  # unicode kept readable
    (tmp_path / "bad.yaml").write_text("steps: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Demo.from_file(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        Demo.from_file(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        Demo.from_file(tmp_path / "missing.yaml")


def parser_for(cls) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    add_config_arguments(p, cls)
    return p


def test_cli_derivation():
    p = parser_for(Demo)
    opts = {a.option_strings[0] for a in p._actions if a.option_strings}
    assert {"--steps", "--name", "--mode", "--device", "--fonts", "--limit", "--inner-rate", "--inner-on"} <= opts
    assert "--hidden" not in opts
    assert config_from_args(Demo, p.parse_args([])) == Demo()  # no option given: defaults kept
    args = p.parse_args(["--steps", "3", "--fonts", "x.ttf,y.ttf", "--inner-rate", "0.2", "--no-inner-on",
                         "--mode", "slow"])
    d = config_from_args(Demo, args)
    assert d == Demo(steps=3, fonts=("x.ttf", "y.ttf"), mode="slow", inner=Inner(rate=0.2, on=False))
    base = Demo(name="base", limit=2)
    assert config_from_args(Demo, p.parse_args(["--steps", "4"]), base=base) == base.replace(steps=4)
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "medium"])  # Literal choices reach argparse
    with pytest.raises(ConfigError, match="integer"):
        config_from_args(Demo, p.parse_args(["--steps", "many"]))
    helptext = p.format_help()
    assert "(default: 10)" in helptext and "a rate in %" in helptext and "(default: a.ttf)" in helptext
