"""Notebook parameters a config class owns agree with its defaults (#10: each default exists once).

A `parameters` cell holds literals only (papermill), so a value a config class owns is either
None ("keep the template's / config's value") or a literal equal to that default, checked here.
"""
from __future__ import annotations

import pytest

from ocrtrain import notebooks
from ocrtrain.dataset import SplitConfig
from ocrtrain.readconfig import ReadConfig
from ocrtrain.train import TrainConfig

# notebook -> {parameter: the config default that owns it}
OWNED = {
    "pipeline": {
        "device": ReadConfig.device,  # both training and reading
        "eval_limit": ReadConfig.compare_limit,
        "parity_limit": ReadConfig.parity_limit,
        "val_fraction": SplitConfig.val_fraction,
        "test_fraction": SplitConfig.test_fraction,
        "seed": TrainConfig.seed,
    },
    "03_evaluate": {"device": ReadConfig.device, "limit": ReadConfig.compare_limit},
    "04_export": {"device": ReadConfig.device, "parity_limit": ReadConfig.parity_limit},
}
# Left to the template chosen in the notebook (TrainConfig templates set them).
FROM_TEMPLATE = {"pipeline": ("batch_size", "val_interval", "val_limit", "workers")}


def test_training_and_reading_share_one_device_default():
    assert TrainConfig.device == ReadConfig.device


@pytest.mark.parametrize("name", sorted(OWNED))
def test_owned_parameters_equal_their_config_defaults(name):
    params = notebooks.read_parameters(notebooks.NOTEBOOK_DIR / f"{name}.ipynb")
    for key, default in OWNED[name].items():
        assert key in params, f"{name}.ipynb has no parameter {key!r}"
        assert params[key] == default, (f"{name}.ipynb: {key} = {params[key]!r} but the config default is "
                                        f"{default!r}: use the default (or None where the cell maps it)")
    for key in FROM_TEMPLATE.get(name, ()):
        assert params[key] is None, f"{name}.ipynb: {key} = {params[key]!r}: None keeps the template's value"
