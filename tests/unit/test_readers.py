"""The readers of non-web-text formats, called directly: Telegram Desktop JSON, CSV, JSONL, Parquet.

Each format is checked on a small fixture written for this project (``tests/fixtures/ingest/``)
and, where one exists, on the real public samples in ``shared/formats/``, read in place.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from classify.errors import InputError
from classify.io.formats import read_file
from classify.io.options import ReadOptions
from classify.io.readers.base import RawPost, Skipped
from classify.io.readers.tabular import as_channel, as_forwarded, parse_reactions
from classify.io.readers.tdesktop import message_text, read_tdesktop_json

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ingest"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "formats"


def read(path: Path, **opts) -> tuple[list[RawPost], list[Skipped]]:
    """All posts and skipped items of one file, through format detection as the CLI does it."""
    items = list(read_file(path, ReadOptions(**opts)))
    return [i for i in items if isinstance(i, RawPost)], [i for i in items if isinstance(i, Skipped)]


def by_id(posts: list[RawPost]) -> dict[str, RawPost]:
    return {p.message_id: p for p in posts}


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"reference samples not found at {SHARED}")
    return path


# --------------------------------------------------------------------------- Telegram Desktop JSON
def test_single_chat_export():
    posts, skipped = read(FIXTURES / "tdesktop_single.json")
    assert [p.message_id for p in posts] == ["2", "3", "4", "6", "7"]
    assert {p.channel for p in posts} == {"Test Embassy"}
    assert all(p.locator == f"message {p.message_id}" for p in posts)
    m = by_id(posts)
    # text as a plain string, reactions by emoji
    assert m["2"].text.startswith("Russia and ASEAN discussed energy cooperation.")
    assert m["2"].reactions == {"👍": 3, "❤": 1}
    assert m["2"].date == "2024-01-02T10:00:00"
    # text as a list of strings and entity objects; date only as unixtime; forward
    assert m["3"].text == "The BRICS summit welcomed new partners.\n#BRICS"
    assert m["3"].date == "2024-01-03T10:00:00+00:00"
    assert m["3"].forwarded_from == "Russian MFA 🇷🇺"
    # media only: kept, without text
    assert m["4"].media and m["4"].text == ""
    # poll: question and answers are the text
    assert m["6"].media and m["6"].text.splitlines() == ["Which topic should we cover next?", "Energy", "Culture"]
    # reactions without an emoji are keyed by type
    assert m["7"].reactions == {"custom_emoji": 2, "paid": 5}
    assert [(s.locator, s.reason) for s in skipped] == [
        ("message 1", "service message (create_channel)"),
        ("message 5", "service message (pin_message)"),
    ]


def test_full_account_export_reads_every_chat_and_left_chats():
    posts, skipped = read(FIXTURES / "tdesktop_account.json")
    assert [(p.channel, p.message_id) for p in posts] == [
        ("Embassy A", "1"), ("Embassy A", "2"), ("Mission B", "2"), ("Old Channel C", "1"),
    ]
    # message ids repeat across chats, locators do not
    assert len({p.locator for p in posts}) == len(posts)
    assert posts[1].media and posts[1].text == ""
    assert posts[2].text == "Mission B met @partner to discuss trade."
    assert [s.reason for s in skipped] == ["service message (edit_group_photo)"]
    assert "Mission B" in skipped[0].locator


def test_malformed_messages_are_skipped_with_their_place_and_problem():
    posts, skipped = read(FIXTURES / "tdesktop_malformed.json")
    assert [p.message_id for p in posts] == ["10", "15"]
    found = {s.locator: s.reason for s in skipped}
    assert set(found) == {"messages[1]", "messages[2]", "message 13", "message 14"}
    assert "not an object" in found["messages[1]"]
    assert "no 'id'" in found["messages[2]"]
    assert "'text' is a int" in found["message 13"]
    assert "part 1" in found["message 14"]
    assert all(r.startswith("malformed message") for r in found.values())


def test_bare_message_array_takes_channel_from_channel_sender(tmp_path):
    msgs = [{"id": 5, "type": "message", "date": "2024-01-01T00:00:00", "from": "Chan", "from_id": "channel9", "text": "hi"},
            {"id": 6, "type": "message", "date": "2024-01-01T00:00:00", "from": "Ann", "from_id": "user1", "text": "yo"}]
    posts = list(read_tdesktop_json(tmp_path / "m.json", "m.json", json.dumps(msgs)))
    assert [(p.message_id, p.channel) for p in posts] == [("5", "Chan"), ("6", None)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"about": "x", "personal_information": {}}', "keys about, personal_information"),
        ('{"id": 1, "text": "one record"}', ".jsonl"),
        ("[1, 2, 3]", "none of them a message"),
        ('{"name": "x", "messages": {"id": 1}}', "'messages' is a dict"),
        ('{"chats": {"about": "x"}}', "expected a 'list' of chats"),
    ],
)
def test_json_of_another_shape_is_a_whole_file_error(tmp_path, content, expected):
    path = tmp_path / "result.json"
    with pytest.raises(InputError, match="result.json") as exc:
        list(read_tdesktop_json(path, path.name, content))
    assert expected in str(exc.value)


def test_truncated_json_names_line_and_column(tmp_path):
    text = (FIXTURES / "tdesktop_single.json").read_text(encoding="utf-8")
    path = tmp_path / "result.json"
    with pytest.raises(InputError) as exc:
        list(read_tdesktop_json(path, path.name, text[: len(text) // 2]))
    msg = str(exc.value)
    assert msg.startswith(f"{path}:line ") and " col " in msg and "truncated" in msg and "\n" not in msg


def test_message_text_rejects_wrong_types():
    assert message_text(["a", {"type": "bold", "text": "b"}, "c"]) == "abc"
    assert message_text(None) == ""
    with pytest.raises(ValueError, match="dict"):
        message_text({"text": "x"})


def test_real_single_chat_sample():
    posts, skipped = read(shared("tdesktop_json_fixture_chat-analytics_DM_2A_7M.json"))
    assert len(posts) + len(skipped) == 8
    assert sorted(s.reason for s in skipped) == ["service message (joined_telegram)", "service message (phone_call)"]
    m = by_id(posts)
    assert m["3644"].text == "https://google.com 👀"
    assert m["3662"].date == "2022-05-09T22:23:53+00:00"  # only date_unixtime in the file
    assert m["3672"].media and m["3672"].text == ""


def test_real_full_account_sample():
    posts, skipped = read(shared("tdesktop_json_fixture_chat-analytics_MultiChat_2C_6M.json"))
    assert len(posts) == 5 and len(skipped) == 1
    assert [p.channel for p in posts] == ["Chat One", "Chat One", "Chat Two", "Chat Two", "Chat Two"]


def test_real_channel_message_array_sample():
    posts, skipped = read(shared("tdesktop_json_real_public_channel_messages_excerpt_TRFactsDeals_2023.json"))
    assert not skipped
    assert [p.message_id for p in posts] == ["95589", "95762", "95587", "95588"]
    assert {p.channel for p in posts} == {"TR Facts Deals🔥🔥🔥"}
    m = by_id(posts)
    assert "Apply ₹700 Off Coupon" in m["95589"].text and m["95589"].media
    assert not m["95762"].media


# --------------------------------------------------------------------------- CSV
def test_csv_with_message_column():
    posts, skipped = read(FIXTURES / "messages.csv")
    assert not skipped
    assert [p.locator for p in posts] == ["row 1", "row 2", "row 3", "row 4"]
    assert [p.message_id for p in posts] == ["101", "102", "103", "104"]
    assert posts[0].text == "Russia and India signed an agreement on energy, trade and culture."
    assert posts[1].text.count("\n") == 2 and posts[1].forwarded_from == "Russian MFA"
    assert posts[2].text == ""
    assert posts[3].text == "NA"  # no NA -> NaN guessing
    assert posts[0].channel == "test_embassy" and posts[0].date == "2024-04-01T10:00:00+00:00"


def test_telethon_csv_with_dict_repr_reactions():
    posts, skipped = read(FIXTURES / "telethon.csv")
    assert not skipped
    assert [p.message_id for p in posts] == ["7", "8", "9"]
    assert {p.channel for p in posts} == {"test_mission"}
    assert posts[0].reactions == {"👍": 66, "🤮": 5, "🔥": 2}
    assert posts[0].date == "2024-05-01 08:00:00+00:00"  # messageDatetime preferred over messageDate
    assert posts[1].forwarded_from == "channel 1234567"
    assert posts[2].text == "" and posts[2].reactions == {"❤": 1}


def test_real_telethon_sample():
    posts, skipped = read(shared("telethon_csv_sample_apollolytics_scraped_messages.csv"))
    assert len(posts) == 1 and not skipped
    p = posts[0]
    assert (p.message_id, p.channel, p.text) == ("2", "soldatskayapravda", "!")
    assert p.reactions == {"👍": 66, "🤮": 5, "🔥": 2}


def test_csv_text_col_option(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("body,num\nhello there,1\n", encoding="utf-8")
    posts, _ = read(path, text_col="BODY", id_col="num")
    assert (posts[0].text, posts[0].message_id) == ("hello there", "1")
    with pytest.raises(InputError, match="no column 'nope' \\(--id-col\\); columns found: body, num"):
        read(path, text_col="body", id_col="nope")


def test_csv_without_text_column_lists_columns(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read(path)
    msg = str(exc.value)
    assert str(path) in msg and "columns found: a, b" in msg and "--text-col" in msg


def test_csv_with_broken_quoting_names_the_line(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text('id,text\n1,"fine"\n2,"never closed\n', encoding="utf-8")
    with pytest.raises(InputError, match="invalid CSV"):
        read(path)


# --------------------------------------------------------------------------- JSON Lines
def test_jsonl_skips_bad_lines_and_keeps_the_rest():
    posts, skipped = read(FIXTURES / "posts.jsonl")
    assert [p.locator for p in posts] == ["line 1", "line 2", "line 6"]
    assert posts[0].reactions == {"👍": 4}
    assert posts[1].reactions == {"🔥": 2, "👍": 1}
    assert posts[2].date == "2024-06-03T10:00:00+00:00" and posts[2].forwarded_from == "Russian MFA"
    assert [(s.locator, s.reason.split(" (")[0]) for s in skipped] == [("line 3", "invalid JSON"), ("line 5", "not a JSON object")]


def test_jsonl_where_no_line_parses_is_an_error(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"text": "cut\n{"text": \n', encoding="utf-8")
    with pytest.raises(InputError, match="no line is a JSON object"):
        read(path)


def test_snscrape_jsonl_takes_channel_and_id_from_url():
    posts, skipped = read(FIXTURES / "snscrape.jsonl")
    assert not skipped
    assert [(p.channel, p.message_id) for p in posts] == [("test_mission", "123"), ("test_mission", "124")]
    assert posts[0].text.startswith("A post scraped") and posts[1].text == ""


# --------------------------------------------------------------------------- Parquet
def test_parquet(tmp_path):
    path = tmp_path / "posts.parquet"
    pd.DataFrame(
        {
            "Message": ["Parquet post one.", None, "Parquet post three."],
            "msg_id": [11, 12, 13],
            "datetime": pd.to_datetime(["2024-07-01T10:00:00Z", "2024-07-02T10:00:00Z", None]),
            "channel_name": ["chan", "chan", "chan"],
            "reactions": [{"👍": 2}, {"❤": 1}, None],
        }
    ).to_parquet(path)
    posts, skipped = read(path)
    assert not skipped
    assert [(p.locator, p.message_id, p.text) for p in posts] == [
        ("row 1", "11", "Parquet post one."), ("row 2", "12", ""), ("row 3", "13", "Parquet post three."),
    ]
    assert posts[0].date == "2024-07-01T10:00:00+00:00" and posts[2].date is None
    assert [p.reactions for p in posts] == [{"👍": 2}, {"❤": 1}, {}]


def test_damaged_parquet_is_an_error(tmp_path):
    path = tmp_path / "posts.parquet"
    pd.DataFrame({"text": ["a"] * 100}).to_parquet(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(InputError, match="unreadable Parquet"):
        read(path)


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"👍": 66}, {"👍": 66}),
        ('{"👍": 66}', {"👍": 66}),
        ("{'👍': 66, '🤮': 5}", {"👍": 66, "🤮": 5}),
        ([{"type": "emoji", "count": 2, "emoji": "❤"}], {"❤": 2}),
        ({"_": "MessageReactions", "results": [{"reaction": {"emoticon": "🔥"}, "count": 3}]}, {"🔥": 3}),
        ([("👍", 1)], {"👍": 1}),
        ("__import__('os').system('echo no')", {}),
        ("{'👍': __import__('os')}", {}),
        ("", {}),
        (None, {}),
        (float("nan"), {}),
    ],
)
def test_parse_reactions(value, expected):
    assert parse_reactions(value) == expected


def test_channel_and_forward_values():
    assert as_channel("https://t.me/soldatskayapravda") == "soldatskayapravda"
    assert as_channel("@mid_rf") == "mid_rf"
    assert as_forwarded("MessageFwdHeader(date=None, from_id=None, from_name='Someone')") == "Someone"
    assert as_forwarded({"from_id": {"_": "PeerChannel", "channel_id": 42}}) == "channel 42"
    assert as_forwarded("False") is None


def test_array_of_chats_is_read_like_a_full_account_export(tmp_path):
    chats = json.loads((FIXTURES / "tdesktop_account.json").read_text(encoding="utf-8"))["chats"]["list"]
    path = tmp_path / "chats.json"
    items = list(read_tdesktop_json(path, path.name, json.dumps(chats)))
    assert [(i.channel, i.message_id) for i in items if isinstance(i, RawPost)] == [
        ("Embassy A", "1"), ("Embassy A", "2"), ("Mission B", "2"),
    ]
    assert sum(isinstance(i, Skipped) for i in items) == 1
