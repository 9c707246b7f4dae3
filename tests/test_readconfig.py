"""eval/predict read their device and batching from one frozen config (ReadConfig)."""
import pytest

from ocrtrain.cli import main
from ocrtrain.errors import ConfigError
from ocrtrain.readconfig import ReadConfig


def test_read_config_defaults_and_checks():
    assert (ReadConfig().device, ReadConfig().batch_size, ReadConfig().parity_limit) == ("auto", 32, 300)
    assert ReadConfig().resolved_device() in ("cpu", "cuda:0")
    with pytest.raises(ConfigError, match="not one of auto, cpu"):
        ReadConfig(device="gpu")
    with pytest.raises(ConfigError, match="batch_size"):
        ReadConfig(batch_size=0)
    assert ReadConfig().compare_limit == 200 and ReadConfig(compare_limit=0).compare_limit == 0  # 0 = all
    with pytest.raises(ConfigError, match="compare_limit must be >= 0"):
        ReadConfig(compare_limit=-1)


def test_eval_cli_takes_its_options_from_read_config(tiny_dataset, capsys):
    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--limit", "3", "--batch-size", "2",
                 "--device", "cpu", "--json"]) == 0
    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--device", "gpu"]) == 1
    assert "not one of auto, cpu" in capsys.readouterr().err


def test_library_and_cli_read_defaults_come_from_read_config():
    import argparse
    import inspect

    from ocrtrain.cli import export as cli_export
    from ocrtrain.easyocr_interop import read_boxes
    from ocrtrain.evaluate import compare, evaluate, parity_check
    from ocrtrain.inference import Predictor

    read = ReadConfig()
    for fn in (evaluate, compare, parity_check, Predictor.__init__, read_boxes):
        assert inspect.signature(fn).parameters["batch_size"].default == read.batch_size, fn.__qualname__
    assert inspect.signature(parity_check).parameters["limit"].default == read.parity_limit
    parser = argparse.ArgumentParser()
    cli_export.register(parser.add_subparsers())
    args = parser.parse_args(["export", "english_g2", "--name", "x", "--out", "o"])
    assert args.parity_limit == read.parity_limit
