"""Text sources: built-in corpus, word lists, CSV/TSV columns (bad rows, encodings, columns)."""
from __future__ import annotations

import unicodedata

import pytest

from ocrtrain.corpus import (BUILTIN, detect_separator, load_builtin, load_csv_column, load_source,
                             load_wordlist)
from ocrtrain.errors import InputError


def test_builtin_corpus_is_norwegian_with_special_letters():
    entries = load_builtin()
    assert len(entries) >= 300 and len(set(entries)) == len(entries)
    text = "".join(entries)
    assert {"æ", "ø", "å", "Æ", "Ø", "Å"} <= set(text)
    assert sum(any(c in e for c in "æøåÆØÅ") for e in entries) >= 60
    assert load_source(BUILTIN).entries == tuple(entries)


def test_wordlist_bom_comments_blank_lines_and_nfc(tmp_path):
    wl = tmp_path / "words.txt"
    decomposed = unicodedata.normalize("NFD", "Blåbær")  # 'a' + combining ring, as macOS may save it
    wl.write_bytes(f"\ufeffMelk\n\n# comment\n  Smør  \r\n{decomposed}\n".encode("utf-8"))
    src = load_wordlist(wl)
    assert src.entries == ("Melk", "Smør", "Blåbær")
    assert len(src.entries[2]) == 6  # one code point per letter


def test_wordlist_not_utf8_names_file_line_and_fix(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Melk\nBrod\nSm\xf8r\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.txt:3 is not UTF-8.*save the word list as UTF-8"):
        load_wordlist(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_wordlist(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n", encoding="utf-8")
    with pytest.raises(InputError, match="no text entries"):
        load_wordlist(empty)


def test_csv_column_skips_and_reports_bad_rows(tmp_path):
    # Openfoodfacts-style TSV: stray quotes inside fields and rows with too many fields.
    tsv = tmp_path / "products.tsv"
    tsv.write_text("code\tproduct_name\tbrand\n"
                   "1\tBlåbær\tX\n"
                   "2\tbroken\trow\ttoo\tmany\n"
                   '3\t"Gulost 26%\tY\n'
                   "4\t\tZ\n"
                   "5\tØl, pils\tW\n", encoding="utf-8")
    src = load_csv_column(tsv, "product_name")
    assert src.entries == ("Blåbær", '"Gulost 26%', "Øl, pils")
    assert src.skipped == ("line 3: expected 3 fields, saw 5",)
    assert src.summary()["skipped_rows"] == 1


def test_csv_separator_detection_and_comma_quoting(tmp_path):
    assert detect_separator("a;b;c") == ";" and detect_separator("a\tb") == "\t"
    assert detect_separator("a,b|c|d") == "|" and detect_separator("single") == ","
    csv = tmp_path / "p.csv"
    csv.write_text('name,price\n"Melk, lett",21\nSmør,40\nbad,row,extra\n', encoding="utf-8")
    src = load_csv_column(csv, "name")
    assert src.entries == ("Melk, lett", "Smør") and len(src.skipped) == 1
    semi = tmp_path / "p2.csv"
    semi.write_text("navn;pris\nRømme;19,90\n", encoding="utf-8")
    assert load_csv_column(semi, "navn").entries == ("Rømme",)


def test_csv_missing_column_lists_available(tmp_path):
    tsv = tmp_path / "products.tsv"
    tsv.write_text("code\tproduct_name\tbrand\n1\tMelk\tTine\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no column 'name'.*'code', 'product_name', 'brand'.*pick one"):
        load_csv_column(tsv, "name")
    with pytest.raises(InputError, match="name the column"):
        load_source(str(tsv))
    assert load_source(str(tsv), "brand").entries == ("Tine",)


def test_csv_not_utf8_names_line(tmp_path):
    csv = tmp_path / "latin1.csv"
    csv.write_bytes("name,price\nMelk,2\nSm\xf8r,3\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.csv:3 is not UTF-8.*iconv"):
        load_csv_column(csv, "name")


def test_rich_entries_spread_the_characters_and_keep_real_words():
    from ocrtrain.corpus import rich_entries

    entries = ["Melk", "Crème fraîche", "Brød", "Ost"]
    out = rich_entries(entries, "èîü", 90, seed=1)
    assert len(out) == 90 and out == rich_entries(entries, "èîü", 90, seed=1)
    assert all(set(e) & set("èîü") for e in out)
    assert [sum(c in e for e in out) >= 30 for c in "èîü"] == [True] * 3
    assert "Crème fraîche" in out  # a real entry holding the character is used as it is
    assert "Ostü" in out or any("ü" in e and e.replace("ü", "") in entries for e in out)  # put into a plain word
    with pytest.raises(InputError, match="names no characters"):
        rich_entries(entries, " ", 3)
