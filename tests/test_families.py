"""Model families: registry, the easyocr-crnn family equal to the code it wraps, checkpoints record families."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import draw_line
from ocrtrain.audit import ctc_steps
from ocrtrain.charset import Charset
from ocrtrain.errors import ConfigError, ModelError
from ocrtrain.families import DEFAULT_FAMILY, family_names, family_of_model, get_family, register_family
from ocrtrain.families.crnn import CrnnFamily
from ocrtrain.inference import custom_mean
from ocrtrain.model import ModelConfig, Recognizer, init_weights
from ocrtrain.preprocess import batch_tensor, resize_to_height, to_gray

SMALL = {"output_channel": 64, "hidden_size": 32}


def test_registry_names_aliases_and_errors():
    assert "easyocr-crnn" in family_names() and DEFAULT_FAMILY == "easyocr-crnn"
    assert get_family("english_g2") is get_family("easyocr-crnn") is get_family("crnn")
    with pytest.raises(ConfigError, match=r"unknown model family 'easyocr-crn': did you mean 'easyocr-crnn'"):
        get_family("easyocr-crn")
    with pytest.raises(ConfigError, match="unknown model family 'zzz'"):
        get_family("zzz")
    with pytest.raises(ConfigError, match="already registered"):
        register_family(CrnnFamily())
    with pytest.raises(ConfigError, match="not a named ModelFamily"):
        register_family(object())
    with pytest.raises(ModelError, match="not a model of any registered family"):
        family_of_model(torch.nn.Linear(2, 2))
    assert family_of_model(torch.nn.DataParallel(Recognizer(ModelConfig(**SMALL), 5))).name == "easyocr-crnn"


def _crnn_batch():
    family = get_family("easyocr-crnn")
    charset = Charset("abcdefKklmt ")
    options = {**family.default_options(), **SMALL}
    model = init_weights(family.build(options, family.num_classes(charset)), seed=0).eval()
    labels = ["Kaffe", "te", "melk"]
    grays = [to_gray(draw_line(t, height=h)) for t, h in zip(labels, (32, 40, 28))]
    return family, charset, options, model, labels, grays


def test_crnn_family_equals_recognizer_ctc_loss_and_decode():
    family, charset, options, model, labels, grays = _crnn_batch()
    assert isinstance(model, Recognizer) and family.img_height(options) == 64 and family.input_channels(options) == 1
    images = family.batch_tensor(grays, options)
    assert torch.equal(images, batch_tensor([resize_to_height(g, 64) for g in grays], 64))
    targets = [family.encode(charset, t) for t in labels]
    assert targets[1] == charset.encode("te")
    outputs = family.train_forward(model, images, targets)
    logits = model(images)
    assert torch.equal(outputs, logits)
    log_probs = logits.float().log_softmax(2).permute(1, 0, 2)
    flat = torch.tensor([c for t in targets for c in t])
    lengths = torch.tensor([len(t) for t in targets])
    inputs = torch.full((3,), log_probs.shape[0], dtype=torch.long)
    for each, reduction in ((False, "mean"), (True, "none")):
        expected = torch.nn.CTCLoss(blank=0, reduction=reduction, zero_infinity=True)(log_probs, flat, inputs, lengths)
        assert torch.equal(family.loss(outputs, targets, each=each), expected)
    preds = family.decode(family.infer_forward(model, images), charset)
    probs = torch.softmax(logits.detach(), 2)
    best = probs.argmax(2)
    for pred, steps, idx in zip(preds, probs.max(2).values, best):
        assert pred.text == charset.decode_ctc(idx.tolist())
        kept = steps[idx != 0].numpy()
        assert pred.confidence == pytest.approx(custom_mean(kept) if len(kept) else 0.0, rel=1e-5)


def test_crnn_label_rule_is_training_and_audit_rule():
    family = get_family("easyocr-crnn")
    options = family.default_options()
    # A 70x32 line is padded to ceil(70/32) * 64 = 192 px: 47 steps (the old audit counted 34).
    assert ctc_steps(70, 32) == 47
    assert family.check_label("a" * 24, (32, 70), options) is None  # 24 + 23 blanks = 47 steps
    reason = family.check_label("a" * 25, (32, 70), options)
    assert reason.startswith("label needs 49 output steps but the 70x32 image gives only 47 at height 64")
    assert "CTC steps" in reason
    assert family.check_label("abc", 192.0, options) is None
    with pytest.raises(ConfigError, match="outside the charset"):
        family.encode(Charset("ab"), "abc")


def test_grow_head_keeps_rows_and_checkpoint_records_family(tmp_path):
    from ocrtrain.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

    family, charset, options, model, _, _ = _crnn_batch()
    grown_charset = charset.extended("åø")
    family.grow_head(model, charset, grown_charset)
    assert family.head_size(model) == family.num_classes(grown_charset)
    path = save_checkpoint(tmp_path / "c.pt", model, grown_charset, options, 3, {})
    raw = torch.load(path, weights_only=True)
    assert raw["family"] == "easyocr-crnn" and raw["model_config"] == ModelConfig(**SMALL).to_dict()
    back, back_charset, config = model_from_checkpoint(load_checkpoint(path))
    assert isinstance(back, Recognizer) and config == ModelConfig(**SMALL) and back_charset == grown_charset
    del raw["family"]  # written before families existed
    torch.save(raw, tmp_path / "old.pt")
    assert isinstance(model_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))[0], Recognizer)
    raw["family"] = "nope"
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="unknown model family 'nope'"):
        load_checkpoint(tmp_path / "bad.pt")


# --------------------------------------------------------------------------- dtrb

from ocrtrain.families.dtrb_model import DtrbModel, DtrbOptions  # noqa: E402

DTRB_SMALL = {"output_channel": 64, "hidden_size": 32}
LOWER = "0123456789abcdefghijklmnopqrstuvwxyz"


def _dtrb(arch: str, num_class: int, seed: int = 0, **sizes) -> DtrbModel:
    t, f, s, p = arch.split("-")
    options = DtrbOptions(Transformation=t, FeatureExtraction=f, SequenceModeling=s, Prediction=p,
                          **{**DTRB_SMALL, **sizes})
    return init_weights(DtrbModel(options, num_class), seed=seed).eval()


def _save_like_dtrb(model: torch.nn.Module, path):
    # DTRB trains torch.nn.DataParallel(Model(opt)) and saves its state dict: every key has 'module.'.
    state = torch.nn.DataParallel(model).state_dict()
    assert all(k.startswith("module.") for k in state)
    torch.save(state, path)
    return path


def _line_grays(texts, height=32):
    return [to_gray(draw_line(t, height=height)) for t in texts]


def test_dtrb_default_models_have_dtrb_sizes_and_names():
    with torch.device("meta"):
        attn = DtrbModel(DtrbOptions(), 38)
        ctc = DtrbModel(DtrbOptions(Transformation="None", FeatureExtraction="VGG", Prediction="CTC"), 37)
    # DTRB's README: TPS-ResNet-BiLSTM-Attn 49.6M parameters, None-VGG-BiLSTM-CTC 8.5M.
    assert round(sum(p.numel() for p in attn.parameters()) / 1e6, 1) == 49.6
    assert round(sum(p.numel() for p in ctc.parameters()) / 1e6, 1) == 8.5
    keys = attn.state_dict()
    for key, shape in [("Transformation.LocalizationNetwork.conv.0.weight", (64, 1, 3, 3)),
                       ("Transformation.LocalizationNetwork.localization_fc2.weight", (40, 256)),
                       ("Transformation.GridGenerator.P_hat", (3200, 23)),
                       ("FeatureExtraction.ConvNet.layer3.4.conv2.weight", (512, 512, 3, 3)),
                       ("FeatureExtraction.ConvNet.conv4_2.weight", (512, 512, 2, 2)),
                       ("SequenceModeling.1.rnn.weight_hh_l0_reverse", (1024, 256)),
                       ("Prediction.attention_cell.rnn.weight_ih", (1024, 256 + 38)),
                       ("Prediction.generator.weight", (38, 256))]:
        assert tuple(keys[key].shape) == shape, key
    # Same layout as our VGG recognizer (and EasyOCR's): the None-VGG-BiLSTM-CTC keys are Recognizer's.
    with torch.device("meta"):
        rec = Recognizer(ModelConfig(output_channel=512), 37)
    assert {k: tuple(v.shape) for k, v in ctc.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in rec.state_dict().items()}


@pytest.mark.parametrize("arch,num_class", [("TPS-ResNet-BiLSTM-Attn", 38), ("None-VGG-BiLSTM-CTC", 37)])
def test_dtrb_state_dict_round_trips_strict_through_the_origin(tmp_path, arch, num_class):
    from ocrtrain.origins import load_origin

    model = _dtrb(arch, num_class, seed=1)
    path = _save_like_dtrb(model, tmp_path / f"{arch}.pth")
    loaded = load_origin(f"dtrb:{path}:{LOWER}")
    assert loaded.family.name == "dtrb" and loaded.model_config.arch == arch
    assert loaded.model_config.output_channel == 64 and loaded.model_config.hidden_size == 32
    assert list(loaded.model.state_dict()) == list(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values()))
    family = loaded.family
    images = family.batch_tensor(_line_grays(["melk 12", "ost"]), loaded.family_options)
    assert images.shape == (2, 1, 32, 100)
    targets = [family.encode(loaded.charset, t) for t in ("melk 12".replace(" ", ""), "ost")]
    with torch.no_grad():
        assert torch.equal(family.infer_forward(loaded.model, images), family.infer_forward(model, images))
        assert torch.equal(family.train_forward(loaded.model, images, targets),
                           family.train_forward(model, images, targets))
    # Without CHARS the head size picks DTRB's default characters.
    assert load_origin(f"dtrb:{path}").charset.chars == LOWER


def test_dtrb_attention_loss_equals_dtrb_fixed_length_cross_entropy():
    family = get_family("dtrb", {"Prediction": "Attn"})
    model = _dtrb("TPS-ResNet-BiLSTM-Attn", 38, seed=2)
    charset = Charset(LOWER)
    labels = ["ost", "melk", "a"]
    targets = [family.encode(charset, t) for t in labels]
    assert targets[0] == [charset.index(c) + 1 for c in "ost"] + [1]  # [GO]=0, [s]=1, characters from 2
    images = family.batch_tensor(_line_grays(labels), family.default_options())
    # DTRB: text [B, batch_max_length + 2] ([GO], label, [s], [GO] padding); model(image, text[:, :-1]).
    text = torch.zeros(3, 27, dtype=torch.long)
    for i, t in enumerate(targets):
        text[i, 1:1 + len(t)] = torch.tensor(t)
    with torch.no_grad():
        preds = model(images, text[:, :-1], is_train=True)
        expected = torch.nn.CrossEntropyLoss(ignore_index=0)(preds.view(-1, 38), text[:, 1:].reshape(-1))
        ours = family.loss(family.train_forward(model, images, targets), targets)
        each = family.loss(family.train_forward(model, images, targets), targets, each=True)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-5)
    assert each.shape == (3,) and each.sum().item() / 11 == pytest.approx(expected.item(), rel=1e-5)  # 4 + 5 + 2 tokens
    with torch.no_grad():  # greedy outputs run batch_max_length + 1 steps; the loss pads the targets
        assert torch.isfinite(family.loss(family.infer_forward(model, images), targets))


def test_dtrb_attention_decoding_stops_at_end_token():
    family = get_family("dtrb", {"Prediction": "Attn"})
    charset = Charset("abc")
    logits = torch.full((2, 6, 5), -10.0)
    for step, cls in enumerate([4, 2, 3, 1, 2, 2]):  # c a b [s] a a
        logits[0, step, cls] = 10.0
    logits[0, 1, 3] = 9.0  # a less confident second step
    logits[1, :, 1] = 10.0  # [s] at once: empty text
    preds = family.decode(logits, charset)
    probs = torch.softmax(logits, 2).max(2).values
    assert preds[0].text == "cab" and preds[1].text == ""
    assert preds[0].confidence == pytest.approx(float(probs[0, :3].prod()), rel=1e-6)
    assert 0 < preds[0].confidence < float(probs[0, 0])
    ctc = get_family("dtrb", {"Prediction": "CTC"})
    ctc_logits = torch.full((1, 4, 4), -10.0)
    for step, cls in enumerate([1, 1, 0, 3]):
        ctc_logits[0, step, cls] = 10.0
    assert ctc.decode(ctc_logits, charset)[0].text == "ac"


def test_dtrb_family_rules_and_preprocessing():
    unbound = get_family("deep-text-recognition-benchmark")
    with pytest.raises(ConfigError, match="depend on its Prediction option"):
        unbound.encode(Charset("ab"), "ab")
    attn = get_family("dtrb", {"Prediction": "Attn"})
    opts = attn.default_options()
    assert attn.img_height(opts) == 32 and attn.batch_key((40, 400), opts) == 100
    assert attn.check_label("a" * 25, (32, 10), opts) is None
    assert "more than batch_max_length 25" in attn.check_label("a" * 26, (32, 999), opts)
    ctc_opts = {**opts, "Transformation": "None", "FeatureExtraction": "VGG", "Prediction": "CTC"}
    ctc = get_family("dtrb", ctc_opts)
    assert ctc.check_label("ab" * 12, (32, 100), ctc_opts) is None  # 24 steps for a 100 px wide VGG input
    assert "CTC steps" in ctc.check_label("aa" * 12, (32, 100), ctc_opts)  # 24 + 12 blanks
    assert attn.normalize_label("Melk", opts) == "melk" and attn.normalize_label("Melk", {"sensitive": True}) == "Melk"
    gray = to_gray(draw_line("Kaffe", height=40))
    from PIL import Image

    stretched = attn.batch_tensor([gray], opts)[0, 0]
    pil = torch.from_numpy(np.array(Image.fromarray(gray).resize((100, 32), Image.Resampling.BICUBIC))).float()
    assert torch.equal(stretched, pil.div(255).sub(0.5).div(0.5))
    padded = attn.batch_tensor([gray], {**opts, "PAD": True})[0, 0]
    width = -(-32 * gray.shape[1] // gray.shape[0])
    assert torch.equal(padded[:, width:], padded[:, width - 1:width].expand(32, 100 - width))


def test_dtrb_grow_head_keeps_old_rows_and_readings():
    family = get_family("dtrb", {"Prediction": "Attn"})
    model = _dtrb("None-VGG-BiLSTM-Attn", 7, seed=3)  # charset 'abcde' + [GO], [s]
    old, new = Charset("abcde"), Charset("abcde").extended("åz")
    grown = DtrbModel(model.config, 7)
    grown.load_state_dict(model.state_dict())
    grown.eval()
    family.grow_head(grown, old, new)
    assert family.head_size(grown) == 9 and grown.Prediction.attention_cell.rnn.weight_ih.shape[1] == 32 + 9
    assert torch.equal(grown.Prediction.generator.weight[:7], model.Prediction.generator.weight)
    å = new.index("å") + 1
    assert torch.equal(grown.Prediction.generator.weight[å], model.Prediction.generator.weight[old.index("a") + 1])
    images = family.batch_tensor(_line_grays(["bad", "cab"]), model.config)
    targets = [family.encode(old, t) for t in ("bad", "cab")]
    with torch.no_grad():
        before = family.train_forward(model, images, targets)
        after = family.train_forward(grown, images, targets)
    assert torch.allclose(after[:, :, :7], before, atol=1e-6)
    restricted = DtrbModel(model.config, 7)
    restricted.load_state_dict(model.state_dict())
    family.grow_head(restricted, old, Charset("ace"))
    assert torch.equal(restricted.Prediction.generator.weight[3], model.Prediction.generator.weight[4])  # 'c'


def test_dtrb_attention_fine_tunes_three_steps_on_cpu(tmp_path):
    from ocrtrain.origins import adapt_charset, load_origin

    path = _save_like_dtrb(_dtrb("TPS-ResNet-BiLSTM-Attn", 38, seed=4), tmp_path / "TPS-ResNet-BiLSTM-Attn.pth")
    loaded = adapt_charset(load_origin(f"dtrb:{path}:{LOWER}"), "melk ost brød", "extend")
    family, options, model = loaded.family, loaded.family_options, loaded.model
    assert "ø" in loaded.charset and family.head_size(model) == len(loaded.charset) + 2
    labels = [family.normalize_label(t, options) for t in ("Melk", "ost", "brød", "Ost")]
    assert all(family.check_label(t, (32, 120), options) is None for t in labels)
    images = family.batch_tensor(_line_grays(labels), options)
    targets = [family.encode(loaded.charset, t) for t in labels]
    family.freeze_feature_extractor(model, False)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = family.loss(family.train_forward(model, images, targets), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)), losses
    changed = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert any(k.startswith("Prediction.generator") for k in changed)
    assert any(k.startswith("Transformation.LocalizationNetwork") for k in changed)
    assert any(k.startswith("FeatureExtraction.ConvNet.layer") for k in changed)
    model.eval()
    with torch.no_grad():
        preds = family.decode(family.infer_forward(model, images), loaded.charset)
    assert len(preds) == 4 and all(0.0 <= p.confidence <= 1.0 for p in preds)


def test_dtrb_checkpoint_predictor_and_exports(tmp_path):
    from ocrtrain.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from ocrtrain.export import export_dtrb, export_easyocr
    from ocrtrain.inference import Predictor
    from ocrtrain.origins import load_origin

    path = _save_like_dtrb(_dtrb("TPS-ResNet-BiLSTM-Attn", 39, seed=5), tmp_path / "m.pth")
    with pytest.raises(ModelError, match=r"has 39 classes and no charset was given.*opt\.txt"):
        load_origin(f"dtrb:{path}")
    with pytest.raises(ModelError, match=r"36 characters \(\+ \[GO\], \[s\] = 38\) but the model has 39"):
        load_origin(f"dtrb:{path}:{LOWER}")
    loaded = load_origin(f"dtrb:{path}:{LOWER}ø")
    lines = [draw_line(t) for t in ("ost", "brød 2")]
    # cpu, as `direct` below: the default (auto) would read on a GPU when torch sees one
    ours = Predictor.from_origin(f"dtrb:{path}:{LOWER}ø", device="cpu").predict(lines)
    images = loaded.family.batch_tensor([to_gray(i) for i in lines], loaded.family_options)
    with torch.no_grad():
        direct = loaded.family.decode(loaded.family.infer_forward(loaded.model, images), loaded.charset)
    assert ours == direct
    # A checkpoint records the family and its options.
    ckpt_path = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", loaded.model, loaded.charset,
                                loaded.model_config, 1, {})
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["family"] == "dtrb" and ckpt["model_config"]["Prediction"] == "Attn"
    back, charset, config = model_from_checkpoint(ckpt)
    assert isinstance(back, DtrbModel) and config == loaded.model_config and charset == loaded.charset
    # easyocr.Reader cannot load attention heads: say so; write DTRB's own files instead.
    with pytest.raises(ModelError, match="easyocr.Reader loads only CTC heads.*export_dtrb"):
        export_easyocr(loaded, "attn_bundle", tmp_path / "out")
    result = export_dtrb(loaded, "receipts_attn", tmp_path / "out")
    assert set(result["files"]) == {"pth", "opt", "json"} and result["arch"] == "TPS-ResNet-BiLSTM-Attn"
    assert "--Transformation TPS --FeatureExtraction ResNet --SequenceModeling BiLSTM --Prediction Attn" \
        in result["demo_command"] and "--imgH 32 --imgW 100" in result["test_command"]
    raw = torch.load(result["files"]["pth"], weights_only=True)
    assert list(raw) == ["module." + k for k in loaded.model.state_dict()]
    opt_text = (tmp_path / "out" / "receipts_attn.opt.txt").read_text(encoding="utf-8")
    assert f"character: {LOWER}ø\n" in opt_text and "Prediction: Attn\n" in opt_text
    again = load_origin(f"dtrb:{result['files']['pth']}")  # characters from NAME.opt.txt
    assert again.charset == loaded.charset
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), loaded.model.state_dict().values()))
    with pytest.raises(ModelError, match="export_dtrb writes deep-text-recognition-benchmark models only"):
        export_dtrb(load_origin("scratch:abc"), "x", tmp_path / "out2")


def test_dtrb_vgg_ctc_exports_to_easyocr_and_scratch_builds_dtrb(tmp_path):
    from ocrtrain.export import export_easyocr
    from ocrtrain.origins import load_origin

    path = _save_like_dtrb(_dtrb("None-VGG-BiLSTM-CTC", 37, seed=6), tmp_path / "ctc.pth")
    loaded = load_origin(f"dtrb:{path}")
    assert loaded.family.exportable_to_easyocr
    result = export_easyocr(loaded, "dtrb_ctc_bundle", tmp_path / "bundle")
    assert "keeps the aspect ratio" in result["notes"][0]
    bundle = load_origin(f"easyocr:{tmp_path}/bundle/dtrb_ctc_bundle")
    assert all(torch.equal(a, b) for a, b in zip(bundle.model.state_dict().values(), loaded.model.state_dict().values()))
    tps = load_origin("scratch", family="dtrb", family_options={**DTRB_SMALL, "Prediction": "CTC"}, seed=0)
    assert isinstance(tps.model, DtrbModel) and tps.charset.chars == LOWER and not tps.family.exportable_to_easyocr
    with pytest.raises(ConfigError, match="is a dtrb model but family 'easyocr-crnn'"):
        load_origin(f"dtrb:{path}", family="english_g2")
    longer = load_origin(f"dtrb:{path}", family_options={"batch_max_length": 40})
    assert longer.model_config.batch_max_length == 40
    with pytest.raises(ModelError, match="does not fit"):
        load_origin(f"dtrb:{path}", family_options={"hidden_size": 16})
