"""Reading tag outputs for the report: label matrices through ``read_tags``, dates, time buckets, evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from classify.codebook import Codebook
from classify.errors import InputError
from classify.learners.cues import CueMatcher
from classify.reporting.corpus import choose_period, load_corpus, parse_dates, period_label
from classify.reporting.evidence import cooccurrence, cue_spans, top_quotes
from classify.tagging.rows import text_lines, to_table


def tag_rows(n: int = 6, dated: bool = True) -> list[dict]:
    rows = []
    for i in range(n):
        frames = ["western_hegemony"] if i % 2 == 0 else []
        text = f"The collective West imposes its hegemony, post {i}." if frames else ""
        rows.append({"post_id": f"p{i}", "message_id": str(i), "source": "d.jsonl", "locator": f"line {i + 1}",
                     "date": f"2024-0{1 + i % 3}-10T10:00:00+00:00" if dated else None, "channel": "chanA" if i < 4 else None,
                     "lang": "en", "topics": ["brics"] if i % 3 == 0 else [], "frames": frames, "stance_west": "against" if frames else "none",
                     "scores": {"brics": 0.9 if i % 3 == 0 else 0.1, "western_hegemony": 0.8 - 0.01 * i if frames else 0.2},
                     "stance_scores": {"against": 0.7, "favor": 0.1, "none": 0.2},
                     "evidence": {f: [{"paragraph": 0, "text": text}] for f in frames}, "status": "ok"})
    rows.append({**rows[-1], "post_id": "empty", "status": "empty", "topics": [], "frames": [], "scores": {}, "stance_scores": {},
                 "evidence": {}, "stance_west": None})
    return rows


@pytest.fixture
def tags_file(tmp_path):
    path = tmp_path / "tags.parquet"
    pq.write_table(to_table(tag_rows()), path)
    return path


def test_load_corpus_counts_and_matrices(tags_file):
    cb = Codebook.load()
    c = load_corpus([tags_file], cb)
    assert c.n == 6 and c.n_rows == 7 and c.status == {"ok": 6, "empty": 1}
    j = c.labels.index("western_hegemony")
    assert c.Y[:, j].tolist() == [True, False, True, False, True, False]
    assert c.Y[:, c.labels.index("brics")].sum() == 2
    assert c.P[0, j] == pytest.approx(0.8)
    assert set(c.rows["channel"]) == {"chanA", "(no channel)"}
    assert c.period_kind is not None and c.n_undated == 0
    co, per = cooccurrence(c)
    assert per[cb.frames.index("western_hegemony")] == 3 and co[cb.frames.index("western_hegemony"), cb.topics.index("brics")] == 1


def test_jsonl_and_csv_tags_read_the_same(tmp_path, tags_file):
    cb = Codebook.load()
    table = to_table(tag_rows())
    (tmp_path / "t.csv").write_text("".join(text_lines(table, ".csv", header=True)))
    (tmp_path / "t.jsonl").write_text("".join(text_lines(table, ".jsonl", header=False)))
    a = load_corpus([tags_file], cb)
    for other in ("t.csv", "t.jsonl"):
        b = load_corpus([tmp_path / other], cb)
        assert (a.Y == b.Y).all() and np.allclose(a.P, b.P)


def test_not_a_tag_output_is_an_input_error(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a tag output|cannot read"):
        load_corpus([bad], Codebook.load())
    with pytest.raises(InputError, match="no such tag output"):
        load_corpus([tmp_path / "missing.parquet"], Codebook.load())


def test_dates_of_every_shape_parse_and_undated_posts_are_counted():
    when = parse_dates(pd.Series(["2024-11-26T09:31:11+00:00", "2023-07-13T10:25:29", "2025-01-05", None, "not a date"]))
    assert when.notna().tolist() == [True, True, True, False, False]
    assert str(when.dt.tz) == "UTC"


def test_period_follows_how_the_dates_spread():
    days = pd.Series(pd.date_range("2024-11-26", periods=9 * 100, freq="15min", tz="UTC"))
    assert choose_period(days) == "day"
    year = pd.Series(pd.date_range("2020-01-01", "2021-03-01", periods=2000, tz="UTC"))
    assert choose_period(year) == "month"
    gap = pd.concat([year, pd.Series(pd.date_range("2024-11-01", "2024-12-04", periods=800, tz="UTC"))], ignore_index=True)
    assert choose_period(gap) == "month"          # its span (5 years) alone would give quarters
    assert choose_period(pd.Series([pd.NaT] * 3, dtype="datetime64[ns, UTC]")) is None
    assert period_label(pd.Timestamp("2024-10-01"), "quarter") == "2024 Q4"


def test_evidence_marks_the_cue_phrases(tags_file):
    cb = Codebook.load()
    q = top_quotes(load_corpus([tags_file], cb), cb)["western_hegemony"]
    assert len(q) == 2                            # one per channel
    assert q[0].score >= q[1].score
    marked = [q[0].text[a:b] for a, b in q[0].spans]
    assert any("collective West" in m or "hegemony" in m for m in marked)
    assert cue_spans(CueMatcher(cb), "western_hegemony", "Nothing here.") == []
