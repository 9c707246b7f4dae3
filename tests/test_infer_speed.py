"""bench.infer_speed.measure_inference on a few drawn crops: every mode runs and the fp32 pair agrees."""
from __future__ import annotations

import numpy as np

from bench.infer_speed import format_table, measure_inference
from conftest import draw_line, sample_labels
from ocrtrain.preprocess import to_gray


def test_measure_inference_rows():
    crops = [to_gray(draw_line(t, height=h)) for t, h in zip(sample_labels(6, seed=5), [32, 40, 28, 48, 32, 36])]
    rows = measure_inference(crops, "cpu", batch_size=4, repeats=1)
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)) and {r["kind"] for r in rows} == {"reader", "ours"}
    assert all(r["crops"] == 6 and r["seconds"] > 0 and r["crops_per_s"] > 0 for r in rows)
    by_name = {r["name"]: r for r in rows}
    ours = by_name["ours fp32 +compat"]
    assert ours["compared_with"] == "reader per-crop fp32" and ours["same_text"] == 6, ours["differences"]
    assert by_name["ours qint8 +compat"]["compared_with"].startswith("reader per-crop qint8")
    assert by_name["reader canvas qint8"]["same_text"] == 6  # on CPU Reader reads the boxes one by one
    assert by_name["reader per-crop fp32"]["same_text"] is None
    table = format_table(rows)
    assert "ours fp32 +compat" in table and "x reader per-crop fp32" in table
    assert isinstance(crops[0], np.ndarray)
