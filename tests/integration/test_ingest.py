"""The ingest stage end to end: web-text segmentation, the CLI on bad input, accounting, output.

The web-text checks compare against ``tests/fixtures/segmentation.json``, written from a human
reading of the five sample dumps; the reader must find the same post starts.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from classify.ingest import main
from classify.io.cleaning import make_post_id
from classify.io.posts import ingest
from classify.io.readers.webtext import parse_reactions
from classify.io.tables import read_table, write_table

ROOT = Path(__file__).resolve().parents[2]
DUMPS = ROOT / "data" / "dumps"
FIXTURES = Path(__file__).parents[1] / "fixtures"
SEGMENTATION = json.loads((FIXTURES / "segmentation.json").read_text(encoding="utf-8"))
INGEST = FIXTURES / "ingest"


@pytest.fixture(scope="module")
def dumps() -> pd.DataFrame:
    """All five sample dumps, ingested once for the module (a few seconds)."""
    if not DUMPS.exists():
        pytest.skip(f"sample dumps not found at {DUMPS}")
    return ingest(sorted(DUMPS.glob("*.txt")))


def line_of(locator: str) -> int:
    assert re.fullmatch(r"line \d+", locator), locator
    return int(locator.split()[1])


def post_at(df: pd.DataFrame, source: str, line: int) -> pd.Series:
    rows = df[(df["source"] == source) & (df["locator"] == f"line {line}")]
    assert len(rows) == 1, f"no single post at {source}:line {line}"
    return rows.iloc[0]


# --------------------------------------------------------------------------- web text
@pytest.mark.parametrize("source", sorted(SEGMENTATION["files"]))
def test_web_text_post_starts_match_the_human_reading(dumps, source):
    spec = SEGMENTATION["files"][source]
    ambiguous = set(spec["ambiguous"])
    found = {line_of(loc) for loc in dumps.loc[dumps["source"] == source, "locator"]}
    assert found - ambiguous == set(spec["starts"]) - ambiguous


def test_cross_dump_copies_share_a_duplicate_group(dumps):
    for src_a, line_a, src_b, line_b in SEGMENTATION["cross_dump_copies"]:
        a, b = post_at(dumps, src_a, line_a), post_at(dumps, src_b, line_b)
        assert a["dup_group"] == b["dup_group"], (src_a, line_a, src_b, line_b)


def test_read_in_full_repetition_is_kept_once(dumps):
    post = post_at(dumps, "000_51aa832bcd877796.txt", 8)
    paragraphs = list(post["paragraphs"])
    assert sum(p.startswith("“Russia has accumulated 80 years") for p in paragraphs) == 1
    preview_first = "🔹️The session brought together policymakers"
    assert sum(p.startswith(preview_first) for p in paragraphs) == 1
    assert post["forwarded_from"] == "Russian Mission to ASEAN"
    assert post["reactions"] == {"👍": 1}


def test_reactions_line_is_parsed(dumps):
    assert parse_reactions("❤1👍1") == {"❤": 1, "👍": 1}
    assert parse_reactions("👍1.2K") == {"👍": 1200}
    assert parse_reactions("Key points:") is None
    assert post_at(dumps, "000_51aa832bcd877796.txt", 64)["reactions"] == {"❤": 1, "👍": 1}


def test_forwarded_from_with_non_breaking_space(dumps):
    first_line = (DUMPS / "004_656d5bba123a02d1.txt").read_text(encoding="utf-8").splitlines()[0]
    assert "\u00a0" in first_line  # the case under test is really in the file
    assert post_at(dumps, "004_656d5bba123a02d1.txt", 1)["forwarded_from"] == "Russian MFA 🇷🇺"
    assert post_at(dumps, "004_656d5bba123a02d1.txt", 27)["forwarded_from"] == "Russian Embassy in India"


def test_media_only_posts_are_posts_without_text(dumps):
    for line in (137, 139):
        post = post_at(dumps, "002_a6b2ee9f8e8f0532.txt", line)
        assert post["empty_text"] and post["media"] and post["text"] == ""
    assert post_at(dumps, "002_a6b2ee9f8e8f0532.txt", 137)["post_id"] != post_at(dumps, "002_a6b2ee9f8e8f0532.txt", 139)["post_id"]


def test_post_ids_are_stable(dumps, tmp_path):
    src = DUMPS / "000_51aa832bcd877796.txt"
    copy = tmp_path / "renamed.txt"
    shutil.copy(src, copy)
    again = ingest([copy])
    original = dumps[dumps["source"] == src.name]
    assert again["post_id"].tolist() == original["post_id"].tolist()  # same text -> same id, any file name
    assert make_post_id("Russia and ASEAN.") == make_post_id("russia  and ASEAN")
    assert make_post_id("Russia and ASEAN.") != make_post_id("Russia and India.")


def test_web_text_posts_have_languages_and_no_noise_lines(dumps):
    assert set(dumps["lang"]) <= {"en", "ru", "fr", "other", "und"}
    assert {"en", "ru", "fr"} <= set(dumps["lang"])
    for paragraphs in dumps["paragraphs"]:
        assert all(p and p.lower() not in ("read in full", "read more") for p in paragraphs)


# --------------------------------------------------------------------------- the CLI on bad input
def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, path: Path) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert lines[0].startswith(f"error: {path}"), lines[0]
    return lines[0]


def total_line(out: str) -> tuple[int, int, int]:
    m = re.search(r"^total: (\d+) input items = (\d+) posts \+ (\d+) skipped$", out, re.M)
    assert m, out
    return int(m[1]), int(m[2]), int(m[3])


def test_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    code, _, err = run(capsys, path)
    assert code == 3
    assert "empty file" in assert_one_line_error(err, path)


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.txt"
    code, _, err = run(capsys, path)
    assert code == 3
    assert "no such file" in assert_one_line_error(err, path)


def test_binary_file(tmp_path, capsys):
    path = tmp_path / "dump.bin"
    path.write_bytes(b"PK\x03\x04\x00\x00\x08\x00" * 64)
    code, _, err = run(capsys, path)
    assert code == 3
    assert "binary" in assert_one_line_error(err, path)


def test_cp1251_text_is_named_and_readable_with_encoding(tmp_path, capsys):
    path = tmp_path / "dump_ru.txt"
    text = "Россия и АСЕАН обсудили международную информационную безопасность.\nСтороны осудили киберпреступность.\n"
    path.write_bytes(text.encode("cp1251"))
    code, _, err = run(capsys, path)
    assert code == 3
    assert "cp1251" in assert_one_line_error(err, path)
    code, out, err = run(capsys, path, "--encoding", "cp1251")
    assert code == 0, err
    assert "ru 1" in out


def test_truncated_json(tmp_path, capsys):
    text = (INGEST / "tdesktop_single.json").read_text(encoding="utf-8")
    path = tmp_path / "result.json"
    path.write_text(text[: len(text) * 2 // 3], encoding="utf-8")
    code, _, err = run(capsys, path)
    assert code == 3
    line = assert_one_line_error(err, path)
    assert re.search(r":line \d+ col \d+: invalid JSON", line) and "re-export" in line


def test_json_of_another_shape(tmp_path, capsys):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"about": "x", "frontier": [], "contacts": {}}), encoding="utf-8")
    code, _, err = run(capsys, path)
    assert code == 3
    line = assert_one_line_error(err, path)
    assert "about, frontier, contacts" in line and "'messages'" in line and "'chats'" in line


def test_csv_without_text_column(tmp_path, capsys):
    path = tmp_path / "posts.csv"
    path.write_text("id,views\n1,100\n2,200\n", encoding="utf-8")
    code, _, err = run(capsys, path)
    assert code == 3
    line = assert_one_line_error(err, path)
    assert "id, views" in line and "--text-col" in line


def test_one_malformed_message_is_skipped_not_fatal(capsys):
    code, out, err = run(capsys, INGEST / "tdesktop_malformed.json")
    assert code == 0, err
    assert err == ""
    assert total_line(out) == (6, 2, 4)
    assert "malformed message" in out


def test_post_over_max_chars_is_skipped_and_counted(capsys):
    code, out, _ = run(capsys, INGEST / "messages.csv", "--max-chars", "40")
    assert code == 0
    assert total_line(out) == (4, 2, 2)
    assert "--max-chars" in out


def test_bad_max_chars_is_a_config_error(capsys):
    code, _, err = run(capsys, INGEST / "messages.csv", "--max-chars", "0")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "max_chars" in err


def test_a_bad_file_among_good_ones_names_the_bad_one(tmp_path, capsys):
    bad = tmp_path / "empty.jsonl"
    bad.write_bytes(b"")
    code, _, err = run(capsys, INGEST / "posts.jsonl", bad)
    assert code == 3
    assert_one_line_error(err, bad)


# --------------------------------------------------------------------------- accounting
ITEMS = {  # file -> number of input items (messages, rows, non-blank lines) in the fixture
    "tdesktop_single.json": 7,
    "tdesktop_account.json": 5,
    "tdesktop_malformed.json": 6,
    "messages.csv": 4,
    "telethon.csv": 3,
    "posts.jsonl": 5,
    "snscrape.jsonl": 2,
}


@pytest.mark.parametrize("name", sorted(ITEMS))
def test_summary_accounts_for_every_input_item(name, capsys):
    code, out, err = run(capsys, INGEST / name)
    assert code == 0, err
    total, posts, skipped = total_line(out)
    assert total == posts + skipped == ITEMS[name]
    assert name in out


def test_library_call_lists_skipped_items():
    df = ingest([INGEST / "tdesktop_single.json", INGEST / "posts.jsonl"])
    assert len(df) + len(df.attrs["skipped"]) == ITEMS["tdesktop_single.json"] + ITEMS["posts.jsonl"]
    assert {tuple(s) for s in map(dict.keys, df.attrs["skipped"])} == {("source", "locator", "reason")}
    assert df["post_id"].is_unique


# --------------------------------------------------------------------------- output round trip
@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    return ingest([INGEST / "tdesktop_single.json", INGEST / "telethon.csv", INGEST / "posts.jsonl"])


@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_output_round_trip(mixed, tmp_path, ext):
    path = write_table(mixed, tmp_path / f"corpus.{ext}")
    back = read_table(path)
    assert list(back.columns) == list(mixed.columns)
    for col in ("post_id", "source", "locator", "text", "lang", "dup_group"):
        assert back[col].tolist() == mixed[col].tolist(), col
    assert all(isinstance(p, list) for p in back["paragraphs"])
    assert back["paragraphs"].tolist() == mixed["paragraphs"].tolist()
    assert back["reactions"].tolist() == mixed["reactions"].tolist()


@pytest.mark.parametrize("ext", ["parquet", "jsonl"])
def test_output_round_trip_keeps_flags_as_booleans(mixed, tmp_path, ext):
    back = read_table(write_table(mixed, tmp_path / f"corpus.{ext}"))
    assert back["media"].tolist() == mixed["media"].tolist()
    assert back["empty_text"].tolist() == mixed["empty_text"].tolist()


def test_csv_round_trip_keeps_flags_as_booleans(mixed, tmp_path):
    back = read_table(write_table(mixed, tmp_path / "corpus.csv"))
    assert back["empty_text"].tolist() == mixed["empty_text"].tolist()


def test_cli_writes_output(tmp_path, capsys):
    out_path = tmp_path / "out" / "corpus.jsonl"
    code, out, _ = run(capsys, INGEST / "tdesktop_account.json", "-o", out_path)
    assert code == 0
    assert f"wrote 4 posts to {out_path}" in out
    assert len(read_table(out_path)) == 4


def test_parquet_output_when_no_post_has_reactions(tmp_path):
    df = ingest([INGEST / "tdesktop_account.json"])
    back = read_table(write_table(df, tmp_path / "corpus.parquet"))
    assert back["reactions"].tolist() == [{}] * len(df)


def test_invisible_characters_inside_words_change_nothing(tmp_path):
    """Soft hyphens, zero-width characters, bidi isolates and NUL bytes inside a post give the same
    text, post id, duplicate group and cue-rule labels as the post without them."""
    from classify.learners.cuerule import CueRuleModel

    plain = "Western sanctions against Russia are illegitimate.\nRussia supports a multipolar world order."
    hidden = ("West\u00adern sanc\u200btions against Rus\u200dsia are il\u2060legitimate.\n"
              "Russia supports a \u2066multi\u200cpolar\u2069 world order.\x00")
    rows = [{"id": 1, "text": plain}, {"id": 2, "text": hidden}]
    src = tmp_path / "posts.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    df = ingest([src])
    assert df["text"].iloc[0] == df["text"].iloc[1] == plain
    assert df["post_id"].iloc[0] == df["post_id"].iloc[1]
    assert df["dup_group"].iloc[0] == df["dup_group"].iloc[1]
    tags = CueRuleModel().fit().predict(df)
    assert tags["frames"].iloc[1] == tags["frames"].iloc[0] == ["multipolar_order", "sanctions_illegitimate"]


def test_zero_width_joiner_inside_an_emoji_sequence_is_kept():
    from classify.io.cleaning import clean_paragraphs

    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_paragraphs(f"Families {family} of diplomats")[0] == f"Families {family} of diplomats"
