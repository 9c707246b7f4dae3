"""Export to EasyOCR's user_network format, checked with the real easyocr.Reader; export/predict CLI."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import yaml

from conftest import draw_line, sample_labels
from ocrtrain.checkpoint import save_checkpoint
from ocrtrain.cli import main
from ocrtrain.easyocr_interop import read_lines
from ocrtrain.errors import ConfigError
from ocrtrain.export import export_easyocr
from ocrtrain.inference import Predictor
from ocrtrain.origins import adapt_charset, load_origin
from ocrtrain.preprocess import prepare
from ocrtrain.readconfig import ReadConfig

LINES = ["Melk 42,90", "TOTAL 1234,56", "Kaffe 59,90", "SUM NOK 99,90"] + sample_labels(8, seed=11)
NORDIC = "æøå"


def _reader(bundle_dir, name, **kwargs):
    import easyocr

    return easyocr.Reader(["en"], recog_network=name, user_network_directory=str(bundle_dir),
                          model_storage_directory=str(bundle_dir), detector=False, download_enabled=False,
                          gpu=False, verbose=False, **kwargs)


@pytest.fixture(scope="module")
def g2_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    return out, export_easyocr("english_g2", "g2_export_test", out)


def test_bundle_files_follow_easyocr_user_network_layout(g2_bundle):
    out, result = g2_bundle
    assert {p.name for p in out.iterdir()} == {"g2_export_test.py", "g2_export_test.pth", "g2_export_test.yaml"}
    recog = yaml.safe_load((out / "g2_export_test.yaml").read_text(encoding="utf-8"))
    g2 = load_origin("english_g2")
    assert recog == {"network_params": {"input_channel": 1, "output_channel": 256, "hidden_size": 256},
                     "imgH": 64, "lang_list": ["en"], "character_list": g2.charset.chars}
    state = torch.load(out / "g2_export_test.pth", map_location="cpu", weights_only=True)
    assert all(k.startswith("module.") for k in state)  # Reader strips 7 characters on CPU, DataParallel on GPU
    assert "recog_network='g2_export_test'" in result["snippet"] and str(out) in result["snippet"]
    # NAME.py on its own (torch only) computes exactly what our Recognizer computes.
    spec = importlib.util.spec_from_file_location("g2_export_test_copy", out / "g2_export_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Model(num_class=97, **recog["network_params"]).eval()
    net.load_state_dict({k[7:]: v for k, v in state.items()}, strict=True)
    x = prepare([draw_line(t) for t in LINES[:3]])
    with torch.no_grad():
        assert torch.equal(net(x, None), g2.model.eval()(x))


def test_exported_english_g2_reads_like_the_original_in_reader(g2_bundle):
    from ocrtrain.easyocr_interop import make_reader

    out, _ = g2_bundle
    images = [draw_line(t) for t in LINES]
    exported = read_lines(_reader(out, "g2_export_test"), images)      # Reader's defaults: quantized on CPU
    original = read_lines(make_reader(None, "english_g2"), images)
    assert exported == original  # same texts and confidences
    assert [p.text for p in exported[:4]] == LINES[:4]


@pytest.fixture(scope="module")
def nordic_model():
    """english_g2 grown by æ/ø/å and briefly fine-tuned (LSTM + head) on drawn lines that use them."""
    torch.manual_seed(0)
    labels = [t for t in sample_labels(300, seed=7) if set(t) & set(NORDIC)][:24]
    images = [draw_line(t) for t in labels]
    grown = adapt_charset(load_origin("english_g2"), "".join(labels), "extend")
    model, charset = grown.model, grown.charset
    model.freeze_feature_extractor(True)  # the VGG already sees the glyphs; also 4x cheaper on CPU
    x = prepare(images)
    targets = torch.tensor([i for t in labels for i in charset.encode(t)])
    target_lengths = torch.tensor([len(t) for t in labels])
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    predictor = Predictor(model, charset)
    untrained = [p.text for p in predictor.predict(images)]
    for step in range(40):
        model.train()
        log_probs = model(x).log_softmax(2).permute(1, 0, 2)
        input_lengths = torch.full((len(labels),), log_probs.shape[0], dtype=torch.long)
        loss = ctc(log_probs, targets, input_lengths, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 5 == 4:
            texts = [p.text for p in predictor.predict(images)]
            if sum(a == b for a, b in zip(texts, labels)) >= 0.8 * len(labels):
                break
    model.eval()
    return grown, labels, images, untrained, texts


def test_fine_tuned_nordic_model_reads_aeoeaa_through_reader(nordic_model, tmp_path):
    grown, labels, images, untrained, texts = nordic_model
    assert not any(set(t) & set(NORDIC) for t in untrained)  # growing alone reads like english_g2
    assert sum(a == b for a, b in zip(texts, labels)) >= 0.8 * len(labels), list(zip(labels, texts))
    export_easyocr(grown, "nordic_export_test", tmp_path)
    exact = read_lines(_reader(tmp_path, "nordic_export_test", quantize=False), images)
    ours = Predictor(grown.model, grown.charset, reader_compatible=True).predict(images)
    assert [p.text for p in exact] == [p.text for p in ours]
    assert any(set(p.text) & set(NORDIC) for p in exact)
    default = read_lines(_reader(tmp_path, "nordic_export_test"), images)  # quantized, as users get it
    assert any(set(p.text) & set(NORDIC) for p in default)
    assert sum(p.text == t for p, t in zip(default, labels)) >= 0.6 * len(labels)


def test_export_from_a_run_folder_picks_the_version(tmp_path):
    g2 = load_origin("english_g2")
    small = adapt_charset(g2, "0123456789, Melk", "restrict")
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "best.pt", g2.model, g2.charset, g2.model_config, 5, {})
    save_checkpoint(run / "checkpoints" / "last.pt", small.model, small.charset, small.model_config, 9, {})
    best = export_easyocr(str(run), "run_best_export", tmp_path / "out")
    last = export_easyocr(str(run), "run_last_export", tmp_path / "out", version="last")
    assert best["source"]["step"] == 5 and best["num_class"] == 97
    assert last["source"]["step"] == 9 and last["charset"] == small.charset.chars
    assert load_origin(f"easyocr:{tmp_path}/out/run_last_export").charset == small.charset


def test_invalid_names_and_overwriting_the_source_are_refused(g2_bundle, tmp_path):
    out, _ = g2_bundle
    for bad, why in [("1abc", "not a Python identifier"), ("class", "not a Python identifier"),
                     ("english_g2", "EasyOCR's own recog_network"), ("json", "already an importable module")]:
        with pytest.raises(ConfigError, match=why):
            export_easyocr("english_g2", bad, tmp_path)
    with pytest.raises(ConfigError, match="would overwrite the source model"):
        export_easyocr(f"easyocr:{out}/g2_export_test", "g2_export_test", out)


def test_export_cli_prints_files_and_reader_snippet(tmp_path, capsys):
    assert main(["export", "english_g2", "--name", "cli_export_test", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "cli_export_test.pth") in printed and "easyocr.Reader(['en']" in printed
    assert main(["export", "english_g2", "--name", "9bad", "--out", str(tmp_path)]) == 1
    assert "not a Python identifier" in capsys.readouterr().err


def test_export_cli_parity_check(tmp_path, tiny_dataset, capsys):
    evaluate = pytest.importorskip("ocrtrain.evaluate")
    if not hasattr(evaluate, "parity_check"):
        pytest.skip("ocrtrain.evaluate.parity_check not written yet")
    code = main(["export", "english_g2", "--name", "parity_export_test", "--out", str(tmp_path),
                 "--parity-data", str(tiny_dataset), "--parity-limit", "4", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["parity"]["n"] == 4 and code == (0 if result["parity"]["ok"] else 1)
    # #10: the readings' resolved device (auto -> cpu here, cuda:0 on a GPU), in the report and the summary.
    device = ReadConfig().resolved_device()
    assert result["parity"]["device"] == device
    main(["export", "english_g2", "--name", "parity_export_test", "--out", str(tmp_path),
          "--parity-data", str(tiny_dataset), "--parity-limit", "2"])
    assert f"parity on 2 samples (read on {device}): ours" in capsys.readouterr().out


def test_predict_cli(tmp_path, capsys):
    folder = tmp_path / "lines"
    folder.mkdir()
    for i, text in enumerate(LINES[:3]):
        draw_line(text).save(folder / f"{i}.png")
    assert main(["predict", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in rows] == LINES[:3] and all(0 < r["confidence"] <= 1 for r in rows)
    assert main(["predict", "english_g2", str(folder / "0.png")]) == 0  # leading SOURCE form
    assert capsys.readouterr().out.strip().endswith("Melk 42,90\t" + f"{rows[0]['confidence']:.4f}")
    assert main(["predict", str(tmp_path / "missing.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
