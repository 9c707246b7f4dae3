"""Line templates: generated fields, the price rule, weights, case variants, determinism."""
from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from ocrtrain.errors import ConfigError
from ocrtrain.line_templates import (DEFAULT_TEMPLATES, DEFAULT_WEIGHTS, FIELDS, check_template, collapse_spaces,
                                     fill_template, make_labels, make_price)

ITEMS = ["Melk", "Brød", "Rømme lett 18%", "Blåbær"]


def test_price_rule_format_and_share_over_100():
    rng = random.Random(3)
    prices = [make_price(rng) for _ in range(5000)]
    assert all(re.fullmatch(r"[1-9]\d{0,2},\d\d", p) for p in prices)
    assert not any("." in p for p in prices)
    wholes = [int(p.split(",")[0]) for p in prices]
    share = sum(w >= 100 for w in wholes) / len(wholes)
    assert 0.08 < share < 0.12 and min(wholes) >= 1 and max(wholes) <= 999
    assert len({p.split(",")[1] for p in prices}) > 90  # decimals vary, always two digits


def test_field_formats():
    rng = random.Random(0)
    out = {name: [make(rng) for _ in range(200)] for name, make in FIELDS.items()}
    assert all(re.fullmatch(r"\d\d\.\d\d\.20\d\d", d) for d in out["date"])
    assert all(re.fullmatch(r"\d\d:\d\d", t) and int(t[:2]) < 24 and int(t[3:]) < 60 for t in out["time"])
    assert all(re.fullmatch(r"\d x", q) for q in out["qty"])
    assert all(re.fullmatch(r"\d,\d{3} kg", w) for w in out["weight"])
    assert all(n.isdigit() for n in out["number"])


def test_labels_deterministic_for_a_seed():
    templates, weights = ["{item}    {price}", "{date} {time}", "{qty} {item}"], [3, 1, 1]
    a = make_labels(300, templates, weights, ITEMS, seed=5)
    assert a == make_labels(300, templates, weights, ITEMS, seed=5)
    assert a != make_labels(300, templates, weights, ITEMS, seed=6)
    assert len(a) == 300 and all(label == label.strip() for label in a)


def test_weights_steer_template_choice():
    labels = make_labels(2000, ["{item}    {price}", "{date}"], [9, 1], ["Melk"], seed=1)
    dates = sum(bool(re.fullmatch(r"\d\d\.\d\d\.\d{4}", x)) for x in labels)
    assert 120 < dates < 280
    only = make_labels(50, ["{item}    {price}", "{date}"], [1, 0], ["Melk"], seed=1)
    assert all(re.fullmatch(r"Melk \d+,\d\d", x) for x in only)


def test_single_spaces_by_default_and_runs_kept_when_asked():
    assert all("  " not in t for t in DEFAULT_TEMPLATES) and len(DEFAULT_WEIGHTS) == len(DEFAULT_TEMPLATES)
    items = ["Rømme  lett 18%"]
    single = make_labels(20, ["{qty}   {item}    {price}"], [1], items, seed=3)
    assert all("  " not in x and x.count(" ") == 5 for x in single)
    kept = make_labels(20, ["{qty}   {item}    {price}"], [1], items, seed=3, single_spaces=False)
    assert all("x   Rømme  lett 18%    " in x for x in kept)
    assert [collapse_spaces(x) for x in kept] == single
    assert collapse_spaces("  a   b ") == "a b"


def test_case_variants():
    labels = make_labels(1000, ["{item}"], [1], ["rømme lett"], seed=2, upper_prob=0.3, title_prob=0.2)
    counts = Counter(labels)
    assert set(counts) == {"rømme lett", "RØMME LETT", "Rømme Lett"}
    assert 230 < counts["RØMME LETT"] < 370 and 130 < counts["Rømme Lett"] < 270


def test_literal_text_and_escaped_braces():
    assert fill_template("SUM {{kr}} {price}", ["x"], random.Random(0)).startswith("SUM {kr} ")
    check_template("Pant {price}")


def test_unknown_field_names_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown field \{prise\}.*\{item\}.*\{price\}.*\{date\}"):
        check_template("{item} {prise}")
    with pytest.raises(ConfigError, match="malformed"):
        check_template("{item")
    with pytest.raises(ConfigError, match="empty"):
        check_template("   ")
    with pytest.raises(ConfigError, match=r"unknown field \{colour\}"):
        make_labels(3, ["{colour}"], [1], ITEMS, seed=0)
