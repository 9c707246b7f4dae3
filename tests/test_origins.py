"""Origins (english_g2, scratch, run, easyocr bundle, dtrb, checkpoint), charset adaptation, checkpoints."""
from __future__ import annotations

import hashlib
import os
import pickle

import pytest
import torch

from conftest import draw_line
from ocrtrain.charset import Charset, english_g2_charset
from ocrtrain.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from ocrtrain.easyocr_interop import english_g2_path
from ocrtrain.errors import ConfigError, ModelError
from ocrtrain.model import ModelConfig, Recognizer, init_weights, strip_module_prefix
from ocrtrain.origins import adapt_charset, load_origin
from ocrtrain.preprocess import prepare


@pytest.fixture(scope="module")
def g2():
    return load_origin("english_g2")


@pytest.fixture(scope="module")
def lines():
    return prepare([draw_line("Melk 42,90"), draw_line("Brød og smør"), draw_line("x")])


def _logits(loaded, x):
    with torch.no_grad():
        return loaded.model.eval()(x)


def _digest(path) -> tuple[str, float]:
    return hashlib.sha256(open(path, "rb").read()).hexdigest(), os.path.getmtime(path)


def test_english_g2_is_the_default_and_loads_strict(g2):
    before = _digest(english_g2_path())
    loaded = load_origin()
    file_state = strip_module_prefix(torch.load(english_g2_path(), map_location="cpu", weights_only=True))
    state = loaded.model.state_dict()
    assert list(state) == list(file_state) and all(torch.equal(state[k], file_state[k]) for k in state)
    assert loaded.charset == english_g2_charset() and loaded.model.num_class == 97
    assert loaded.model_config == ModelConfig() and loaded.info["kind"] == "english_g2"
    assert _digest(english_g2_path()) == before  # origins are only read


def test_extend_grows_the_head_and_keeps_old_logits_exactly(g2, lines):
    before = _logits(g2, lines)
    grown = adapt_charset(g2, "Blåbær, Brød og Øl", "extend")
    assert grown.charset.chars[:96] == g2.charset.chars and grown.charset.chars[96:] == "Øåæø"
    assert grown.model.num_class == 101 and grown.info["charset_change"]["added"] == "Øåæø"
    after = _logits(grown, lines)
    assert torch.equal(after[..., :97], before)
    assert torch.equal(_logits(g2, lines), before)  # the original is untouched
    # New rows start from their look-alike (å from a, ø from o) a margin lower: same reading as before.
    w, b = grown.model.Prediction.weight, grown.model.Prediction.bias
    a, a_ring = g2.charset.index("a"), grown.charset.index("å")
    assert torch.equal(w[a_ring], w[a]) and b[a_ring] < b[a]
    assert torch.equal(after.argmax(-1), before.argmax(-1))


def test_restrict_keeps_the_rows_of_the_data_characters(g2, lines):
    before = _logits(g2, lines)
    small = adapt_charset(g2, "0123456789, Melk", "restrict")
    assert small.charset.chars == "0123456789, Mekl"
    rows = [0] + [g2.charset.index(c) for c in small.charset.chars]
    assert torch.equal(small.model.Prediction.weight, g2.model.Prediction.weight[rows])
    assert torch.equal(_logits(small, lines), before[..., rows])
    mixed = adapt_charset(g2, "abø", "restrict")  # unknown data characters are appended
    assert mixed.charset.chars == "abø" and mixed.info["charset_change"]["removed"].startswith("0123")


def test_keep_and_bad_mode(g2):
    assert adapt_charset(g2, "ø", "keep") is g2
    assert adapt_charset(g2, "abc", "extend") is g2  # nothing new
    with pytest.raises(ConfigError, match="'grow' is not one of extend, restrict, keep"):
        adapt_charset(g2, "ø", "grow")


def test_scratch_uses_english_g2_charset_unless_given():
    a = load_origin("scratch", seed=1)
    assert a.charset == english_g2_charset() and a.info["kind"] == "scratch"
    b = load_origin("scratch", charset="abc", seed=1)
    assert b.charset == Charset("abc") and b.model.num_class == 4
    c = load_origin("scratch:abc", seed=1)
    assert all(torch.equal(x, y) for x, y in zip(b.model.state_dict().values(), c.model.state_dict().values()))


def test_easyocr_bundle_round_trip(g2, tmp_path, lines):
    from ocrtrain.export import export_easyocr

    grown = adapt_charset(g2, "æøå", "extend")
    export_easyocr(grown, "roundtrip_bundle", tmp_path)
    back = load_origin(f"easyocr:{tmp_path}/roundtrip_bundle")
    assert back.charset == grown.charset and back.info["kind"] == "easyocr"
    assert torch.equal(_logits(back, lines), _logits(grown, lines))
    # Wrong sizes in the YAML -> the mismatching keys are listed.
    yaml_path = tmp_path / "roundtrip_bundle.yaml"
    yaml_path.write_text(yaml_path.read_text(encoding="utf-8").replace("hidden_size: 256", "hidden_size: 128"),
                         encoding="utf-8")
    with pytest.raises(ModelError, match=r"SequenceModeling\.0\.rnn\.weight_ih_l0: file \(1024, 256\) vs model"):
        load_origin(f"easyocr:{tmp_path}/roundtrip_bundle")
    with pytest.raises(ModelError, match=r"nothere\.yaml does not exist.*NAME\.pth and NAME\.yaml"):
        load_origin(f"easyocr:{tmp_path}/nothere")


def _run(tmp_path, g2):
    run = tmp_path / "run"
    for step, name in [(10, "step-00000010.pt"), (20, "step-00000020.pt"), (20, "best.pt"), (30, "last.pt")]:
        save_checkpoint(run / "checkpoints" / name, g2.model, g2.charset, g2.model_config, step,
                        {"cer": 0.1}, extra={"epoch": 1} if name == "last.pt" else None)
    return run


def test_run_specs_pick_the_version(g2, tmp_path):
    run = _run(tmp_path, g2)
    assert load_origin(f"run:{run}").info["step"] == 20
    assert load_origin(f"run:{run}@last").info["step"] == 30
    assert load_origin(f"run:{run}@step-10").info["step"] == 10
    assert load_origin(str(run)).info["version"] == "best"  # a bare run folder
    ckpt = load_origin(str(run / "checkpoints" / "last.pt"))
    assert ckpt.info["kind"] == "checkpoint" and ckpt.charset == g2.charset
    with pytest.raises(ModelError, match=r"step-00000099\.pt does not exist \(available: best\.pt, last\.pt"):
        load_origin(f"run:{run}@step-99")
    with pytest.raises(ModelError, match="run folder .*missing.* does not exist"):
        load_origin(f"run:{tmp_path}/missing")


def test_checkpoint_format_and_atomic_write(g2, tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", g2.model, g2.charset, g2.model_config, 7,
                           {"cer": torch.tensor(0.5)}, extra={"rng": torch.get_rng_state(), "samples_seen": 3})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["charset"] == g2.charset.chars
    assert raw["metrics"] == {"cer": 0.5} and raw["samples_seen"] == 3
    assert load_checkpoint(path)["step"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left
    import numpy as np

    with pytest.raises(ModelError, match=r"checkpoint\['rng'\]\[1\] is a numpy.ndarray.*weights_only"):
        save_checkpoint(tmp_path / "d.pt", g2.model, g2.charset, g2.model_config, 1, {},
                        extra={"rng": ("MT", np.zeros(3))})
    with pytest.raises(ConfigError, match="'charset' would replace"):
        save_checkpoint(tmp_path / "d.pt", g2.model, g2.charset, g2.model_config, 1, {}, extra={"charset": "x"})
    assert not (tmp_path / "d.pt").exists()


def test_foreign_files_are_refused_with_a_fix(g2, tmp_path):
    from fractions import Fraction

    pickled = tmp_path / "random.pt"
    torch.save({"x": Fraction(1, 3)}, pickled)  # a pickle of an arbitrary Python object
    with pytest.raises(ModelError, match=r"random\.pt holds a pickled fractions\.Fraction object.*weights_only"):
        load_checkpoint(pickled)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"x": Fraction(1, 3)}))
    with pytest.raises(ModelError, match=r"plain\.pkl is not a readable PyTorch file"):
        load_checkpoint(plain)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(ModelError, match="not a readable PyTorch file"):
        load_origin(str(junk))
    with pytest.raises(ModelError, match="bare state dict .*easyocr:DIR/NAME"):
        load_origin(str(english_g2_path()))
    other = tmp_path / "other.pt"
    bad = {k: v for k, v in g2.model.state_dict().items()}
    bad["Prediction.weight"] = torch.zeros(50, 256)
    torch.save({"format": CHECKPOINT_FORMAT, "model_config": {}, "charset": g2.charset.chars, "state_dict": bad,
                "step": 0, "metrics": {}}, other)
    with pytest.raises(ModelError, match=r"other\.pt does not fit .*Prediction\.weight: file \(50, 256\)"):
        load_origin(str(other))
    with pytest.raises(ModelError, match="checkpoint .*nope.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(ModelError, match="neither a known origin"):
        load_origin("no-such-model")


def _dtrb_file(tmp_path, num_class=37, name="None-VGG-BiLSTM-CTC.pth"):
    # DTRB saves DataParallel state dicts of Model(opt): output_channel 512, hidden 256 by default.
    model = init_weights(Recognizer(ModelConfig(output_channel=512), num_class), seed=0)
    path = tmp_path / name
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, path)
    return path, model


def test_dtrb_state_dicts_load_with_their_charset(tmp_path):
    path, model = _dtrb_file(tmp_path)
    loaded = load_origin(f"dtrb:{path}")
    assert loaded.charset.chars == "0123456789abcdefghijklmnopqrstuvwxyz"
    # DTRB files load into the dtrb family (DTRB's 32x100 inputs), stages read from the keys.
    from ocrtrain.families.dtrb_model import DtrbOptions

    assert loaded.family.name == "dtrb" and loaded.info["kind"] == "dtrb"
    assert loaded.model_config == DtrbOptions(Transformation="None", FeatureExtraction="VGG", Prediction="CTC")
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values()))
    path5, _ = _dtrb_file(tmp_path, num_class=6, name="five.pth")
    assert load_origin(f"dtrb:{path5}:ab:c;").charset.chars == "ab:c;"  # ':' inside the charset
    chars = tmp_path / "chars.txt"
    chars.write_text("x\ny\nz\n:\n;\n", encoding="utf-8")
    assert load_origin(f"dtrb:{path5}:{chars}").charset.chars == "xyz:;"
    with pytest.raises(ModelError, match=r"4 characters \(\+ blank = 5\) but the model has 6 classes"):
        load_origin(f"dtrb:{path5}:abcd")
    with pytest.raises(ModelError, match="has 6 classes and no charset was given"):
        load_origin(f"dtrb:{path5}")
    with pytest.raises(ModelError, match=r"missing\.pth does not exist"):
        load_origin(f"dtrb:{tmp_path}/missing.pth:abc")
    tps = tmp_path / "tps.pth"
    torch.save({**torch.load(path, weights_only=True),
                "module.Transformation.LocalizationNetwork.fc1.0.weight": torch.zeros(2, 2)}, tps)
    with pytest.raises(ModelError, match="TPS"):
        load_origin(f"dtrb:{tps}")


def test_source_spec_turns_run_folders_into_specs_with_a_version(tmp_path):
    from ocrtrain.errors import InputError
    from ocrtrain.origins import source_spec

    run = tmp_path / "r1"
    (run / "checkpoints").mkdir(parents=True)
    assert source_spec(run) == f"run:{run}"
    assert source_spec(run, "last") == f"run:{run}@last"
    assert source_spec(f"run:{run}", "best") == f"run:{run}@best"
    assert source_spec(f"run:{run}@step-3", "best") == f"run:{run}@step-3"  # a named version wins
    assert source_spec("english_g2", "best") == "english_g2"
    assert source_spec("easyocr:/x/model") == "easyocr:/x/model"
    (tmp_path / "plain-folder").mkdir()
    with pytest.raises(InputError, match="not a run folder"):
        source_spec(tmp_path / "plain-folder")
