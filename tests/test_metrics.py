"""Unit tests of ocrtrain.metrics against hand-computed values."""
from __future__ import annotations

import json
import random

import pytest

from ocrtrain.errors import InputError, OcrtrainError
from ocrtrain.metrics import (SUMMARY_MODES, char_confusions, confusions_to_json, edit_distance, line_cer,
                              metric_key, normalize, summarize, top_confusions)


def test_kitten_sitting_by_hand():
    # k->s, e->i, +g: 3 edits; label has 6 chars, the longer string 7.
    m = summarize(["sitting"], ["kitten"])
    assert m["n"] == 1
    assert m["accuracy"] == 0.0 and m["accuracy_ci"] == 0.0
    assert m["cer"] == pytest.approx(3 / 6)
    assert m["ned"] == pytest.approx(3 / 7)
    assert m["wer"] == pytest.approx(1.0)
    assert (m["char_errors"], m["label_chars"]) == (3, 6)


def test_cer_is_micro_averaged_and_ned_macro_averaged():
    labels = ["Melk 12,50", "Brød"]           # 10 + 4 = 14 label chars
    preds = ["Melk 12,50", "Brod"]            # 0 + 1 edits
    m = summarize(preds, labels)
    assert m["accuracy"] == 0.5
    assert m["cer"] == pytest.approx(1 / 14)
    assert m["ned"] == pytest.approx((0 + 1 / 4) / 2)
    assert m["wer"] == pytest.approx(1 / 3)   # words: Melk, 12,50, Brød -> one wrong


def test_wer_counts_split_and_merged_words():
    # "Melk12,50 kr" vs "Melk 12,50 kr": [Melk12,50, kr] vs [Melk, 12,50, kr] = 1 sub + 1 del
    m = summarize(["Melk12,50 kr", "Melk 12.50 kr"], ["Melk 12,50 kr", "Melk 12,50 kr"])
    assert m["word_errors"] == 3 and m["label_words"] == 6
    assert m["wer"] == pytest.approx(0.5)


def test_case_insensitive_accuracy():
    m = summarize(["MELK", "ost", "Brod"], ["Melk", "Ost", "Brød"])
    assert m["accuracy"] == 0.0
    assert m["accuracy_ci"] == pytest.approx(2 / 3)


def test_whitespace_normalised_figures_forgive_space_runs_only():
    labels = ["Melk 12,50", "Brød 9,90", "Ost 3,00"]
    preds = ["Melk    12,50", " Brød 9,90 ", "Ost 3.00"]   # extra spaces, padded, one real error
    m = summarize(preds, labels)
    assert m["accuracy"] == 0.0 and m["cer"] == pytest.approx((3 + 2 + 1) / 27)
    assert m["accuracy_ws"] == pytest.approx(2 / 3) and m["cer_ws"] == pytest.approx(1 / 27)
    assert m["ned_ws"] == pytest.approx((1 / 8) / 3)
    # Merged words are a real error under every mode: a missing space is not a space run.
    merged = summarize(["MelkLett"], ["Melk Lett"])
    assert merged["accuracy_ws"] == merged["accuracy_ci_ws"] == 0.0 and merged["cer_ws"] == pytest.approx(1 / 9)
    both = summarize(["MELK   LETT"], ["Melk Lett"])
    assert (both["accuracy"], both["accuracy_ws"], both["accuracy_ci"], both["accuracy_ci_ws"]) == (0.0, 0.0, 0.0, 1.0)
    assert both["cer_ci_ws"] == 0.0 and both["cer_ci"] == pytest.approx(2 / 9)


def test_normalize_modes_and_keys():
    assert normalize("\tMelk \n  Lett  ", "ws") == "Melk Lett"
    assert normalize("Melk  LETT", "ci") == "melk  lett"
    assert normalize(" Melk  LETT ", "ci_ws") == "melk lett"
    assert normalize("TOTAL  12.50", "loose") == normalize("Total12.50", "loose") == "total12.50"
    assert normalize(" x ", "raw") == " x "
    with pytest.raises(InputError, match="unknown text normalisation 'fuzzy'"):
        normalize("x", "fuzzy")
    m = summarize(["a"], ["a"])
    for mode in SUMMARY_MODES:
        for key in ("accuracy", "cer", "ned"):
            assert m[metric_key(key, mode)] is not None
    assert metric_key("cer") == "cer" and metric_key("accuracy", "ci_ws") == "accuracy_ci_ws"


def test_confidences_mean_and_absent():
    assert summarize(["a", "b"], ["a", "c"], [0.5, 1.0])["mean_confidence"] == pytest.approx(0.75)
    assert summarize(["a"], ["a"])["mean_confidence"] is None


def test_empty_inputs_are_undefined_not_perfect():
    m = summarize([], [])
    assert m["n"] == 0
    for key in ("accuracy", "accuracy_ci", "cer", "wer", "ned", "mean_confidence", "accuracy_ws", "cer_ws",
                "cer_ci_ws"):
        assert m[key] is None, key
    c = char_confusions([], [])
    assert c == {"substitutions": {}, "insertions": {}, "deletions": {}, "per_char": {}}


def test_empty_labels():
    both_empty = summarize([""], [""])
    assert both_empty["accuracy"] == 1.0 and both_empty["ned"] == 0.0
    assert both_empty["cer"] is None and both_empty["wer"] is None
    junk = summarize(["ab"], [""])
    assert junk["accuracy"] == 0.0 and junk["ned"] == 1.0 and junk["cer"] is None
    assert line_cer("ab", "") == 2.0 and line_cer("", "") == 0.0


def test_length_mismatch_raises_with_fix():
    with pytest.raises(InputError, match="2 predictions for 1 labels"):
        summarize(["a", "b"], ["a"])
    with pytest.raises(OcrtrainError, match="confidences"):
        summarize(["a"], ["a"], [0.1, 0.2])
    with pytest.raises(InputError):
        char_confusions(["a"], [])


def test_confusions_by_hand():
    labels = ["Brød", "Løk", "Ost"]
    preds = ["Brod", "Lk", "Osst"]
    c = char_confusions(preds, labels)
    assert c["substitutions"] == {("ø", "o"): 1}
    assert c["deletions"] == {"ø": 1}
    assert c["insertions"] == {"s": 1}
    oe = c["per_char"]["ø"]
    assert (oe["count"], oe["substituted"], oe["deleted"], oe["errors"]) == (2, 1, 1, 2)
    assert oe["error_rate"] == 1.0
    assert c["per_char"]["B"] == {"count": 1, "substituted": 0, "deleted": 0, "errors": 0, "error_rate": 0.0}
    assert c["per_char"]["s"]["count"] == 1 and c["per_char"]["s"]["errors"] == 0
    assert set(c["per_char"]) == set("BrødLkOst")


def test_confusion_counts_sum_to_edit_distance_on_random_pairs():
    rng = random.Random(7)
    alphabet = "abøæå 12,"
    labels = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(200)]
    preds = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(200)]
    c = char_confusions(preds, labels)
    total = sum(c["substitutions"].values()) + sum(c["insertions"].values()) + sum(c["deletions"].values())
    assert total == summarize(preds, labels)["char_errors"] == sum(edit_distance(p, g) for p, g in zip(preds, labels))
    # per-char counts are label character counts
    assert sum(v["count"] for v in c["per_char"].values()) == sum(map(len, labels))
    assert all(0.0 <= v["error_rate"] <= 1.0 for v in c["per_char"].values())


def test_ned_matches_dtrb_formula():
    labels = ["Kaffe 49,90", "Egg", "", "Rømme"]
    preds = ["Kafe 49.90", "", "", "Romme 1"]
    # DTRB test.py: norm_ED += 1 - ED / max(len(gt), len(pred)); we report 1 - mean(norm_ED).
    norm = []
    for p, g in zip(preds, labels):
        longest = max(len(g), len(p))
        norm.append(1.0 if longest == 0 else 1 - edit_distance(p, g) / longest)
    assert summarize(preds, labels)["ned"] == pytest.approx(1 - sum(norm) / len(norm))
    assert summarize(preds, labels)["ned"] == pytest.approx((2 / 11 + 1 + 0 + 3 / 7) / 4)


def test_top_confusions_and_json():
    c = char_confusions(["Brod", "Lok", "Smr", "Oost"], ["Brød", "Løk", "Smør", "Ost"])
    top = top_confusions(c, k=2)
    assert top[0] == {"kind": "substitution", "gold": "ø", "pred": "o", "count": 2}
    assert len(top) == 2
    as_json = confusions_to_json(c)
    back = json.loads(json.dumps(as_json, ensure_ascii=False))
    assert back["substitutions"] == [{"gold": "ø", "pred": "o", "count": 2}]
    assert back["deletions"] == {"ø": 1}
    assert back["per_char"]["ø"]["errors"] == 3
