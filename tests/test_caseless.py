"""Case-insensitive training on upper-case-only ground truth (SROIE-style labels)."""
import pytest
import torch

from conftest import sample_labels, write_drawn_dataset
from ocrtrain.charset import english_g2_charset
from ocrtrain.errors import ConfigError
from ocrtrain.events import Message
from ocrtrain.families.ctc import ctc_loss
from ocrtrain.tasks.caseless import MIN_LETTERS, CaseFold, caseless_sources
from ocrtrain.train import TrainConfig, fit

FAST = dict(max_steps=2, val_interval=2, batch_size=4, val_limit=4, workers=0, warmup_steps=1,
            freeze_feature_extractor=True, device="cpu", guard="", general_val=0, replay=0.0, baseline=False)


def test_fold_keeps_a_distribution_and_maps_lower_targets_to_upper():
    charset = english_g2_charset()
    fold = CaseFold.from_chars(charset.chars)
    assert len(fold.pairs) == 26
    log_probs = torch.randn(3, 7, len(charset) + 1).log_softmax(-1)
    folded = fold.log_probs(log_probs)
    assert torch.allclose(folded.exp().sum(-1), torch.ones(3, 7), atol=1e-5)
    a, big_a = charset.index("a"), charset.index("A")
    assert torch.allclose(folded[..., big_a].exp(), log_probs[..., a].exp() + log_probs[..., big_a].exp(), atol=1e-6)
    assert float(folded[..., a].max()) < -1e3
    assert fold.targets([[a, charset.index("1")]]) == [[big_a, charset.index("1")]]


def test_folded_loss_does_not_punish_the_case_the_print_shows():
    charset = english_g2_charset()
    fold = CaseFold.from_chars(charset.chars)
    # outputs that read "total" in lower case, one character per step with blanks between
    steps = [charset.index(c) for c in "total"]
    logits = torch.full((1, 2 * len(steps) + 1, len(charset) + 1), -8.0)
    logits[0, :, 0] = 8.0
    for t, cls in enumerate(steps):
        logits[0, 2 * t + 1, 0], logits[0, 2 * t + 1, cls] = -8.0, 8.0
    upper = [[charset.index(c) for c in "TOTAL"]]
    assert float(ctc_loss(logits, upper)) > 5  # as written, the upper-case label says the reading is wrong
    assert float(ctc_loss(logits, upper, fold=fold)) < 0.1  # folded, it is right
    assert float(ctc_loss(logits, [[charset.index(c) for c in "TOTAI"]], fold=fold)) > 2  # a wrong letter still counts (mean per label char)


def test_which_sources_are_folded():
    upper = ["TOTAL 12,50 MYR"] * (MIN_LETTERS // 8 + 1)
    assert caseless_sources("auto", ["sroie", "synth"], [upper, ["Total 12,50"] * 100]) == [0]
    assert caseless_sources("auto", ["few"], [["TOTAL 1"]]) == []  # too few letters to tell a convention
    assert caseless_sources("auto", ["a", "replay"], [upper, upper], replay=[1]) == [0]
    assert caseless_sources("off", ["sroie"], [upper]) == []
    assert caseless_sources("synth", ["sroie", "synth"], [upper, ["Total"]]) == [1]
    with pytest.raises(ConfigError, match="not training datasets"):
        caseless_sources("forms", ["sroie"], [upper])
    with pytest.raises(ConfigError, match="auto, off or a comma list"):
        TrainConfig(caseless="a b")


@pytest.fixture(scope="module")
def upper_dataset(tmp_path_factory):
    labels = sample_labels(96, seed=5)  # drawn in mixed case, labelled in upper case: SROIE's convention
    return write_drawn_dataset(tmp_path_factory.mktemp("caseless") / "shouty", [(t, t.upper()) for t in labels])


def test_a_run_trains_upper_case_labels_case_insensitively(tiny_dataset, upper_dataset, tmp_path):
    said = []
    run = fit(TrainConfig(**{**FAST, "caseless": "auto"}), [str(upper_dataset), str(tiny_dataset)], tmp_path / "auto",
              callback=lambda e: said.append(e.text) if isinstance(e, Message) else None)
    assert run.status()["state"] == "finished"
    assert any(t.startswith("case-insensitive training on shouty:") for t in said), said
    assert not any("on tiny" in t for t in said if t.startswith("case-insensitive"))
    assert run.status()["selected"] == "val:cer_ci"  # the first val set is shouty's: picked ignoring case
    off, said = [], []
    assert TrainConfig().caseless == "off"
    run_off = fit(TrainConfig(**FAST), [str(upper_dataset), str(tiny_dataset)],
                  tmp_path / "off", callback=lambda e: said.append(e.text) if isinstance(e, Message) else None)
    assert not any(t.startswith("case-insensitive") for t in said)
    assert run_off.status()["selected"] == "val:cer"
    losses = [r["train_loss"] for r in run.metrics("train")]
    assert losses != [r["train_loss"] for r in run_off.metrics("train")]  # the fold changes the loss
