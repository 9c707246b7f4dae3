"""The frozen-feature cache of the CPU recipe: what it feeds the head, when it is on, and that it is reused."""
import threading

import numpy as np
import torch

from conftest import cached_recipe, draw_line
from ocrtrain.augment import AugmentConfig
from ocrtrain.families import get_family
from ocrtrain.model import ModelConfig, Recognizer
from ocrtrain.preprocess import batch_tensor, resize_to_height
from ocrtrain.tasks.feature_cache import FeatureCache, stack_rows
from ocrtrain.train import TrainConfig, fit

FAST = cached_recipe(max_steps=6)
BORDER = 6  # feature columns next to an image border that see it (VGG receptive field)


def _lines(texts):
    grays = [resize_to_height(np.asarray(draw_line(t, height=40, font_size=28))) for t in texts]
    return grays, [batch_tensor([g]) for g in grays]


def _model():
    torch.manual_seed(0)
    return Recognizer(ModelConfig(), num_class=20).eval()


def test_rows_are_each_line_alone_continued_by_its_padding_column():
    model, family = _model(), get_family("easyocr-crnn")
    grays, lines = _lines(["Melk 12,50", "Ost", "Kjøttdeig 2 x 45,00 90,00"])
    cache = FeatureCache(2 ** 30, family)
    rows = cache.rows(model, [10, 11, 12], lines)
    with torch.no_grad():
        for (feats, _), line in zip(rows, lines):  # each line as read alone (float16, channels-last)
            assert torch.allclose(feats, model.features(line)[0], rtol=1e-3, atol=1e-3)
        batched = model.features(batch_tensor(grays))  # the image path: all padded to the widest
    stacked = stack_rows(rows)
    widest = max(range(3), key=lambda i: rows[i][0].shape[0])
    assert stacked.shape == batched.shape
    assert torch.allclose(stacked[widest], batched[widest], rtol=1e-3, atol=1e-3)
    for i, (feats, _) in enumerate(rows):
        if i == widest:
            continue
        own = feats.shape[0]
        assert torch.allclose(stacked[i, :own - BORDER], batched[i, :own - BORDER], rtol=1e-3, atol=1e-3)
        # Past the line, the batch's padding columns are the line's own constant padding column.
        far = slice(own + BORDER, stacked.shape[1] - BORDER)
        assert torch.allclose(stacked[i, far], batched[i, far], atol=1e-4)


def test_a_line_is_computed_once_then_reused_and_the_budget_is_kept():
    model, family = _model(), get_family("easyocr-crnn")
    _, lines = _lines(["Melk 12,50", "Ost 3,00"])
    cache = FeatureCache(2 ** 30, family)
    first = cache.rows(model, [1, 2], lines)
    calls = []
    original = family.line_features
    family.line_features = lambda m, x: calls.append(x.shape) or original(m, x)
    try:
        again = cache.rows(model, [2, 1], lines[::-1])
    finally:
        del family.line_features
    assert calls == [] and cache.reused == 2
    for (a, pad_a), (b, pad_b) in zip(first, again[::-1]):
        assert torch.equal(a, b) and torch.equal(pad_a, pad_b)
    said = []
    one_line = first[0][0].numel() * 2 + first[0][1].numel() * 4  # float16 features + float32 padding column
    small = FeatureCache(one_line, family, message=lambda text, level: said.append((level, text)))
    small.rows(model, [1, 2], lines)
    small.rows(model, [1, 2], lines)
    assert list(small.lines) == [(1, 0)] and small.reused == 1
    assert len(said) == 1 and said[0][0] == "warning" and "raise feature_cache_mb" in said[0][1]


def test_training_uses_the_cache_with_frozen_features_and_validates_as_the_full_model(tiny_dataset, tmp_path):
    notes = []
    cached = fit(TrainConfig(**FAST), tiny_dataset, tmp_path / "cached",
                 callback=lambda e: notes.append(getattr(e, "text", "")))
    assert any(n.startswith("feature cache: each line") for n in notes)
    plain = fit(TrainConfig(**{**FAST, "feature_cache_mb": 0}), tiny_dataset, tmp_path / "plain")
    rows = [run.metrics("val") for run in (cached, plain)]
    numbers = ("cer", "accuracy", "val_loss")
    step0 = [[[r[k] for k in numbers] for r in rs if r["step"] == 0] for rs in rows]
    assert step0[0] and step0[0][0][:2] == step0[1][0][:2]  # the origin's validation: the same readings,
    assert abs(step0[0][0][2] - step0[1][0][2]) < 1e-5  # the loss up to rounding (channels-last VGG)
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]] == [0, 3, 6]
    assert all(abs(a["val_loss"] - b["val_loss"]) < 0.5 for a, b in zip(*rows))
    assert cached.status()["state"] == plain.status()["state"] == "finished"


def test_the_cache_is_off_when_lines_change_between_passes_and_auto_fixes_one_variant(tiny_dataset, tmp_path):
    notes = []
    cfg = TrainConfig(**{**FAST, "max_steps": 2, "augment": AugmentConfig(), "augment_variants": 0})
    fit(cfg, tiny_dataset, tmp_path / "aug", callback=lambda e: notes.append(getattr(e, "text", "")))
    assert "feature cache off: augmentation changes the lines at every pass (augment_variants 0)" in notes
    notes.clear()
    fit(TrainConfig(**{**FAST, "max_steps": 2, "augment": AugmentConfig()}), tiny_dataset, tmp_path / "auto",
        callback=lambda e: notes.append(getattr(e, "text", "")))  # augment_variants -1: auto
    assert any(n.startswith("feature cache: each line") and "2 fixed variant(s) per line" in n for n in notes)
    notes.clear()
    fit(TrainConfig(**{**FAST, "max_steps": 2, "freeze_feature_extractor": False, "cpu_recipe": False}),
        tiny_dataset, tmp_path / "full", callback=lambda e: notes.append(getattr(e, "text", "")))
    assert not any(n.startswith("feature cache") for n in notes)


def test_a_cached_run_stopped_and_resumed_repeats_the_uninterrupted_one(tiny_dataset, tmp_path):
    cfg = TrainConfig(**{**FAST, "replay": 0.25, "replay_lines": 12, "max_steps": 8, "val_interval": 4})
    straight = fit(cfg, tiny_dataset, tmp_path / "straight")
    stop = threading.Event()
    stopper = lambda e: stop.set() if getattr(e, "step", 0) == 5 else None  # noqa: E731
    assert fit(cfg, tiny_dataset, tmp_path / "half", callback=stopper, stop_event=stop).status()["state"] == \
        "canceled"
    resumed = fit(cfg, "ignored-on-resume", tmp_path / "half", resume=True)
    losses = [[(r["step"], r["train_loss"]) for r in run.metrics("train")] for run in (straight, resumed)]
    assert len(losses[0]) == 8 and losses[0] == losses[1]


def test_fixed_augmentation_variants_are_cached_and_repeat_every_n_epochs(tiny_dataset, tmp_path):
    from ocrtrain.tasks.lines import LineBatches, LineSet

    notes = []
    cfg = TrainConfig(**{**FAST, "max_steps": 16, "val_interval": 8, "augment": AugmentConfig(probability=1.0),
                         "augment_variants": 2})
    run = fit(cfg, tiny_dataset, tmp_path / "aug2", callback=lambda e: notes.append(getattr(e, "text", "")))
    assert any(n.startswith("feature cache: each line") for n in notes) and run.status()["state"] == "finished"
    s = LineSet(tiny_dataset / "train", [0, 1], ["a", "b"], [[1], [2]], [100, 100])
    src = LineBatches([s], [], AugmentConfig(probability=1.0), 0, 0, lambda g: torch.tensor(g[0][None, None] * 1.0),
                      per_line=True, variants=2)
    assert torch.equal(src.line(0, 0), src.line(0, 2)) and not torch.equal(src.line(0, 0), src.line(0, 1))


def _source(path, **kw):
    from ocrtrain.tasks.lines import LineBatches, LineSet

    sets = [LineSet(path, [0, 1, 2], ["a", "b", "c"], [[1], [2], [3]], [100, 100, 100]),
            LineSet(path, [3, 4], ["d", "e"], [[4], [5]], [100, 100])]
    kw = {"variants": 2, **kw}
    return LineBatches(sets, [[0, 1, 3], [2, 4, 1]], AugmentConfig(probability=1.0), 0, 0,
                       lambda g: torch.tensor(g[0][None, None] * 1.0), per_line=True, **kw)


def test_rows_the_cache_holds_are_not_decoded_again_and_group_as_before(tiny_dataset, monkeypatch):
    from ocrtrain.tasks.lines import KnownRows

    held = set()
    plain, known = _source(tiny_dataset / "train"), _source(tiny_dataset / "train", known=KnownRows(
        lambda pos, variant: (pos, variant) in held))
    first = known[0]
    assert all(line is not None for line in first["lines"]) and len(known.known.aspects) == 3
    held.update((pos, 0) for pos in first["positions"])
    decoded = []
    original = type(known)._augmented
    monkeypatch.setattr(type(known), "_augmented", lambda self, *a: decoded.append(a) or original(self, *a))
    again, second = known[0], known[1]
    assert decoded and all(a[0:2] != (0, 0) and a[0:2] != (0, 1) and a[0:2] != (1, 0) for a in decoded)
    assert again["lines"] == [None, None, None]
    for mine, theirs in ((again, plain[0]), (second, plain[1])):  # rows, order and groups as with pixels
        assert [mine[k] for k in ("positions", "labels", "groups", "variant")] == \
            [theirs[k] for k in ("positions", "labels", "groups", "variant")]
    assert second["lines"][second["positions"].index(1)] is None  # position 1 was held from batch 0
    assert all((line is None) == (pos in {0, 1, 3}) for pos, line in zip(second["positions"], second["lines"]))


def test_fixed_sources_keep_one_augmentation_and_share_their_cache_key(tiny_dataset):
    src = _source(tiny_dataset / "train", fixed_sources={1})
    assert torch.equal(src.line(3, 0), src.line(3, 1))  # set 1 (e.g. replay): one augmentation all run
    assert not torch.equal(src.line(0, 0), src.line(0, 1))  # set 0: its two variants in turn
    assert [src.row_variant(p, 1) for p in (0, 2, 3, 4)] == [1, 1, 0, 0]
    cache = FeatureCache(2 ** 30, get_family("easyocr-crnn"), row_variant=src.row_variant)
    assert cache.key(3, 1) == (3, 0) and cache.key(2, 1) == (2, 1)
    assert not _source(tiny_dataset / "train", fixed_sources={1}, variants=0).fixed_sources  # no cache: no fix


def test_a_cached_augmented_run_with_replay_resumed_repeats_the_uninterrupted_one(tiny_dataset, tmp_path):
    cfg = TrainConfig(**{**FAST, "replay": 0.25, "replay_lines": 12, "max_steps": 24, "val_interval": 12,
                         "augment": AugmentConfig(probability=1.0), "augment_variants": 2})
    notes = []
    straight = fit(cfg, tiny_dataset, tmp_path / "straight", callback=lambda e: notes.append(getattr(e, "text", "")))
    assert any("replay lines keep one" in n for n in notes)
    assert any(n.startswith("epoch 2: feature cache: ") and " reused" in n for n in notes)  # the log says its size
    stop = threading.Event()
    stopper = lambda e: stop.set() if getattr(e, "step", 0) == 13 else None  # noqa: E731
    fit(cfg, tiny_dataset, tmp_path / "half", callback=stopper, stop_event=stop)
    resumed = fit(cfg, "ignored-on-resume", tmp_path / "half", resume=True)
    losses = [[(r["step"], r["train_loss"]) for r in run.metrics("train")] for run in (straight, resumed)]
    assert len(losses[0]) == 24 and losses[0] == losses[1]
    other = fit(TrainConfig(**{**cfg.__dict__, "workers": 1}), tiny_dataset, tmp_path / "workers")
    # a loader process decodes every row (it cannot see the cache): the same numbers
    assert [(r["step"], r["train_loss"]) for r in other.metrics("train")] == losses[0]


def test_chunks_never_mix_lines_that_keep_one_augmentation_with_those_that_take_turns():
    from ocrtrain.tasks.feature_cache import batch_chunks

    plans = [[[0, 1, 5, 6], [2, 3, 7]], [[1, 6, 2], [0, 5, 3, 7]]]
    mixed = batch_chunks(plans, lambda pos: 100, 64)
    split = batch_chunks(plans, lambda pos: 100, 64, lambda pos: int(pos >= 5))
    assert mixed[0] == (0, 1, 5, 6)  # one width: the whole first batch in one pass
    assert split[0] == (0, 1) and split[5] == (5, 6) and split[7] == (7,) and split[2] == (2, 3)


def _wide_pads(family, model, lines):
    from ocrtrain.tasks.feature_cache import _pad_images

    with torch.no_grad():
        pads = family.line_features(model, _pad_images(lines))
    return pads[:, pads.shape[1] // 2]


def test_padding_columns_of_english_g2_come_from_one_pixel_column_once_it_matched():
    from ocrtrain.origins import load_origin

    model, family = load_origin("english_g2", device="cpu").model.eval(), get_family("easyocr-crnn")
    _, first = _lines(["Melk 12,50", "Kjøttdeig 2 x 45,00"])
    _, later = _lines(["TOTAL 32.00", "Ost"])
    later = [later[0] * 0.6 - 0.3, later[1]]  # a darker page: another padding column
    cache = FeatureCache(2 ** 30, family)
    cache.rows(model, [1, 2], first)  # checks the column copy against the 64-px images
    assert isinstance(cache._column, torch.nn.Module)
    widths = []
    original = family.line_features
    family.line_features = lambda m, x: widths.append(x.shape[-1]) or original(m, x)
    try:
        rows = cache.rows(model, [3, 4], later)
    finally:
        del family.line_features
    assert 1 in widths and 64 not in widths  # the later padding columns: one pixel wide
    wide = _wide_pads(family, model, later)
    assert torch.allclose(torch.stack([pad for _, pad in rows]), wide, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(wide[0], wide[1], atol=1e-2)  # two different paddings, both matched


class _Ramp(torch.nn.Module):
    """A layer that sees where a column is: no column form, so the cache must not use one."""

    def forward(self, x):
        return x + torch.arange(x.shape[-1], dtype=x.dtype) * 0.1


def test_a_layer_without_a_column_form_keeps_the_64_px_padding_images():
    model, family = _model(), get_family("easyocr-crnn")
    model.FeatureExtraction.ConvNet[1] = torch.nn.Sequential(torch.nn.ReLU(), _Ramp())
    _, lines = _lines(["Melk 12,50", "Ost"])
    cache = FeatureCache(2 ** 30, family)
    cache.rows(model, [1], lines[:1])
    assert cache._column is False
    rows = cache.rows(model, [2], lines[1:])
    assert torch.allclose(rows[0][1], _wide_pads(family, model, lines[1:])[0], atol=1e-5)
