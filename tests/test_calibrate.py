"""Confidence calibration: a temperature fitted on validation lines, baked into the EasyOCR export."""
import json

import pytest

from conftest import draw_line, sample_labels
from ocrtrain.calibrate import (apply_temperature, calibrate, expected_calibration_error, log_loss, reliability,
                                suggest_threshold)
from ocrtrain.cli import main
from ocrtrain.easyocr_interop import read_lines
from ocrtrain.errors import ConfigError
from ocrtrain.inference import Predictor
from ocrtrain.origins import load_origin


def test_reliability_threshold_and_error_on_known_numbers():
    conf = [0.99, 0.95, 0.9, 0.6, 0.5, 0.3]
    right = [True, True, True, False, True, False]
    bins = reliability(conf, right, bins=2)
    assert [b["count"] for b in bins] == [1, 5] and bins[1]["accuracy"] == 0.8  # 0.5 opens the upper bin
    assert expected_calibration_error(conf, right, bins=2) == pytest.approx(
        (1 * abs(0.0 - 0.3) + 5 * abs(0.8 - 0.788)) / 6)
    th = suggest_threshold(conf, right, target=0.98)
    assert th["threshold"] == 0.9 and th["kept"] == 0.5 and th["accuracy_kept"] == 1.0
    assert suggest_threshold([0.5, 0.4], [False, False])["threshold"] is None
    assert log_loss([0.9], [True]) < log_loss([0.6], [True]) < log_loss([0.9], [False])


def test_temperature_changes_confidence_not_readings():
    loaded = load_origin("english_g2")
    images = [draw_line(t) for t in sample_labels(8, seed=4)]
    plain = Predictor(loaded.model, loaded.charset).predict(images)
    hot = apply_temperature(loaded, 2.0)
    soft = Predictor(hot.model, hot.charset).predict(images)
    assert [p.text for p in soft] == [p.text for p in plain]
    assert all(s.confidence < p.confidence for s, p in zip(soft, plain) if p.confidence < 0.999)
    assert loaded.model.Prediction.weight.data_ptr() != hot.model.Prediction.weight.data_ptr()  # a copy
    with pytest.raises(ConfigError, match="> 0"):
        apply_temperature(loaded, 0)


def test_fitted_temperature_lowers_log_loss_and_the_export_reports_it_in_reader(tiny_dataset, tmp_path, capsys):
    loaded = load_origin("english_g2")
    labels = sample_labels(24, seed=5)
    events = []
    cal = calibrate(loaded, [draw_line(t) for t in labels], labels, temperatures=(0.5, 1.0, 2.0),
                    callback=events.append)
    assert cal.temperature in (0.5, 1.0, 2.0) and cal.lines == 24
    assert [(e.stage, e.done, e.total, e.info["T"]) for e in events] == [
        ("calibrate", 1, 3, 0.5), ("calibrate", 2, 3, 1.0), ("calibrate", 3, 3, 2.0)]
    assert cal.after["log_loss"] <= cal.before["log_loss"]
    code = main(["calibrate", "english_g2", "--data", str(tiny_dataset), "--export", "g2_calibrated",
                 "--out", str(tmp_path / "bundle"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    t = report["temperature"]
    import easyocr

    reader = easyocr.Reader(["en"], recog_network="g2_calibrated", user_network_directory=str(tmp_path / "bundle"),
                            model_storage_directory=str(tmp_path / "bundle"), detector=False,
                            download_enabled=False, gpu=False, verbose=False)
    images = [draw_line(x) for x in labels[:6]]
    got = read_lines(reader, images)
    scaled = apply_temperature(loaded, t)
    ours = Predictor(scaled.model, scaled.charset, reader_compatible=True, quantize=True).predict(images)
    assert [p.text for p in got] == [p.text for p in ours]
    assert [round(p.confidence, 3) for p in got] == [round(p.confidence, 3) for p in ours]
    with pytest.raises(SystemExit):
        main(["calibrate", "english_g2"])  # --data is required
    assert main(["calibrate", "english_g2", "--data", str(tiny_dataset), "--export", "x"]) == 1
    assert "needs --out" in capsys.readouterr().err


def test_cli_takes_its_defaults_from_the_config_and_refuses_bad_values(tmp_path, capsys):
    from ocrtrain.calibrate import CalibrationConfig
    from ocrtrain.cli import build_parser
    from ocrtrain.config import config_from_args

    args = build_parser().parse_args(["calibrate", "english_g2", "--data", "ds"])
    assert config_from_args(CalibrationConfig, args) == CalibrationConfig()  # one home for the defaults
    args = build_parser().parse_args(["calibrate", "english_g2", "--data", "ds", "--limit", "40", "--target", "0.9"])
    assert config_from_args(CalibrationConfig, args) == CalibrationConfig(limit=40, target=0.9)
    for option, value, message in (("--limit", "0", "limit must be at least 1, got 0"),
                                   ("--target", "1.5", "target must be in (0, 1], got 1.5")):
        assert main(["calibrate", "english_g2", "--data", str(tmp_path / "nope"), option, value]) == 1
        assert message in capsys.readouterr().err
