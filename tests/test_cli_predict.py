"""`ocrtrain predict --quantize`: EasyOCR's default CPU quantization from the command line, in-process."""
from __future__ import annotations

import json

from conftest import draw_line
from ocrtrain.cli import main

LINES = ["Melk 42,90", "TOTAL 1234,56", "Kaffe 59,90"]


def test_predict_quantized(tmp_path, capsys):
    for i, text in enumerate(LINES):
        draw_line(text).save(tmp_path / f"{i}.png")
    assert main(["predict", str(tmp_path), "--quantize", "--batch-size", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in rows] == LINES and all(0 < r["confidence"] <= 1 for r in rows)
    assert main(["predict", str(tmp_path), "--quantize", "--device", "cuda"]) == 1
    assert "quantize=True needs device 'cpu'" in capsys.readouterr().err
