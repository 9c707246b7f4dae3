"""Charset invariants: blank 0, EasyOCR's english_g2 order, strict/lenient encoding, CTC collapsing."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ocrtrain.charset import ENGLISH_G2_CHARS, Charset, english_g2_charset
from ocrtrain.errors import ConfigError


def test_blank_is_zero_and_characters_follow_in_order():
    cs = Charset("abc")
    assert Charset.BLANK == 0
    assert [cs.index(c) for c in "abc"] == [1, 2, 3]
    assert cs.num_classes == 4 and len(cs) == 3
    assert cs.decode([1, 2, 3]) == "abc"
    assert cs.to_list() == ["a", "b", "c"]


def test_english_g2_matches_easyocr_config_and_weights():
    from easyocr.config import recognition_models

    from ocrtrain.easyocr_interop import english_g2_path

    easy = recognition_models["gen2"]["english_g2"]["characters"]
    cs = english_g2_charset()
    assert cs.chars == easy == ENGLISH_G2_CHARS
    assert len(cs) == 96 and cs.num_classes == 97
    head = torch.load(english_g2_path(), map_location="cpu", weights_only=True)["module.Prediction.weight"]
    assert head.shape[0] == cs.num_classes
    # The euro sign sits after the symbols and a plain space, as in EasyOCR.
    assert cs.chars.index("€") == cs.chars.index("~") + 2 and cs.chars[cs.chars.index("~") + 1] == " "


def test_indices_match_easyocr_ctc_label_converter():
    from easyocr.utils import CTCLabelConverter

    cs = english_g2_charset()
    conv = CTCLabelConverter(cs.chars)
    assert conv.character == ["[blank]"] + list(cs.chars)
    text = "Melk 42,90 € {x}"
    encoded, length = conv.encode([text])
    assert cs.encode(text) == encoded.tolist() and length.tolist() == [len(text)]


def test_strict_encode_raises_lenient_drops():
    cs = english_g2_charset()
    with pytest.raises(ConfigError, match=r"'Brød'.*\['ø'\].*extend the charset"):
        cs.encode("Brød")
    assert cs.encode("Brød", lenient=True) == cs.encode("Brd")
    assert cs.missing("Blåbær") == {"å", "æ"}
    assert cs.encode("") == []


def test_ctc_decode_collapses_repeats_and_drops_blanks():
    cs = Charset("ab")
    assert cs.decode_ctc([0, 1, 1, 0, 2, 2]) == "ab"
    assert cs.decode_ctc([1, 0, 1]) == "aa"          # a blank separates a real double letter
    assert cs.decode_ctc([1, 1, 1]) == "a"
    assert cs.decode_ctc([0, 0, 0]) == ""
    assert cs.decode_ctc(np.array([2, 2, 0, 1])) == "ba"   # NumPy indices work too


def test_ctc_decode_equals_easyocr_greedy_decoder_on_random_paths():
    from easyocr.utils import CTCLabelConverter

    cs = english_g2_charset()
    conv = CTCLabelConverter(cs.chars)
    rng = random.Random(0)
    paths = [[rng.choice([0, 0, 0, rng.randrange(1, 97)]) for _ in range(rng.randrange(1, 40))] for _ in range(200)]
    flat = np.array([i for p in paths for i in p])
    theirs = conv.decode_greedy(flat, [len(p) for p in paths])
    assert [cs.decode_ctc(p) for p in paths] == theirs


def test_extended_appends_new_characters_sorted_and_keeps_old_indices():
    cs = english_g2_charset()
    grown = cs.extended("Blåbær og brød ØÆ")
    assert grown.chars[:96] == cs.chars
    assert grown.chars[96:] == "".join(sorted("åæøØÆ"))
    assert all(grown.index(c) == cs.index(c) for c in cs.chars)
    assert cs.extended("abc") == cs  # nothing new: an equal charset


def test_restricted_keeps_order_of_the_original():
    cs = english_g2_charset()
    small = cs.restricted("zyx0 ,")
    assert small.chars == "0, xyz"
    assert small.num_classes == 7


def test_duplicates_and_multi_character_entries_are_rejected():
    with pytest.raises(ConfigError, match="duplicate"):
        Charset("abca")
    with pytest.raises(ConfigError, match="not a single character"):
        Charset(["a", "bc"])


def test_equality_and_hash_follow_the_characters():
    assert Charset("ab") == Charset(["a", "b"]) and hash(Charset("ab")) == hash(Charset("ab"))
    assert Charset("ab") != Charset("ba")
    assert "a" in Charset("ab") and "c" not in Charset("ab")
