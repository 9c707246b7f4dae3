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


def test_eval_cli_takes_its_options_from_read_config(tiny_dataset, capsys):
    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--limit", "3", "--batch-size", "2",
                 "--device", "cpu", "--json"]) == 0
    assert main(["eval", "english_g2", "--data", str(tiny_dataset), "--device", "gpu"]) == 1
    assert "not one of auto, cpu" in capsys.readouterr().err
