"""The codebook loader: the real file, and one clear error per kind of mistake in a broken one."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest
import yaml

from classify.codebook import ENV_VAR, PACKAGED, REPO_COPY, Codebook, resolve_path
from classify.errors import CodebookError, InputError

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "labels" / "codebook.yaml"

# The ids of shared/spec/codebook.md, in its order (tests may use literals; code may not).
TOPICS = ("cyber", "energy", "ukraine", "brics")
FRAMES = ("multipolar_order", "western_hegemony", "sanctions_illegitimate", "western_security_threat",
          "ukraine_delegitimised", "peace_and_dialogue", "international_law", "reliable_partnership",
          "historical_memory", "civilisational_values")
STANCES = ("against", "favor", "none")


@pytest.fixture(scope="module")
def cb() -> Codebook:
    return Codebook.load(REAL)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "codebook.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def mutated(tmp_path: Path, change) -> Path:
    """The real codebook, changed as data by ``change(data)`` and written to a temporary file."""
    data = yaml.safe_load(REAL.read_text(encoding="utf-8"))
    change(data)
    return write(tmp_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def error_of(path: Path) -> str:
    with pytest.raises(CodebookError) as exc:
        Codebook.load(path)
    msg = str(exc.value)
    assert "\n" not in msg, "errors are one line"
    assert str(path) in msg, "errors name the file"
    return msg


# ------------------------------------------------------------------------------ the real codebook
def test_ids_are_the_codebook_md_ids_in_order(cb):
    assert cb.version == "1.0"
    assert cb.name
    assert cb.topics == TOPICS
    assert cb.frames == FRAMES
    assert cb.stances == STANCES
    assert cb.labels("stance_west") == STANCES


def test_every_label_is_complete_and_frozen(cb):
    for lid in (*TOPICS, *FRAMES, *STANCES):
        label = cb.label(lid)
        assert label.id == lid and label.name and label.definition
        assert isinstance(label.include, tuple) and isinstance(label.exclude, tuple) and isinstance(label.cues, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cb.label("cyber").name = "x"


def test_topics_and_frames_have_english_and_russian_cues(cb):
    for lid in (*TOPICS, *FRAMES):
        cues = cb.label(lid).cues
        assert any(re.search(r"[a-z]", c, re.I) and not re.search(r"[а-я]", c, re.I) for c in cues), lid
        assert any(re.search(r"[а-яё]", c, re.I) for c in cues), lid
    for sid in STANCES:
        assert cb.label(sid).cues == ()


def test_task_of_index_and_sha(cb):
    assert cb.task_of("brics") == "topics"
    assert cb.task_of("historical_memory") == "frames"
    assert cb.task_of("favor") == "stance_west"
    assert cb.index("sanctions_illegitimate") == 2
    assert cb.sha256 == hashlib.sha256(REAL.read_bytes()).hexdigest()
    assert set(cb.label("against").cue_frames) == {"western_hegemony", "western_security_threat", "sanctions_illegitimate"}
    assert cb.no_stance == "none"


def test_unknown_id_and_task(cb):
    with pytest.raises(CodebookError, match=r"unknown label id 'sanctions'; known ids: cyber, energy"):
        cb.label("sanctions")
    with pytest.raises(CodebookError, match="unknown task 'stance'"):
        cb.labels("stance")
    assert issubclass(CodebookError, InputError) and issubclass(CodebookError, ValueError)


def test_packaged_copy_is_identical():
    # An installed (non-editable) package reads classify/codebook.yaml: it must be this file.
    assert PACKAGED.read_bytes() == REAL.read_bytes(), "copy labels/codebook.yaml to classify/codebook.yaml"


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)  # not the current directory: the repository the package sits in
    assert resolve_path() == REPO_COPY == REAL
    assert Codebook.load().topics == TOPICS


def test_env_var_wins(monkeypatch, tmp_path):
    path = mutated(tmp_path, lambda d: d.update(version="9.9"))
    monkeypatch.setenv(ENV_VAR, str(path))
    assert Codebook.load().version == "9.9"


def test_edited_file_is_reread(tmp_path):
    path = write(tmp_path, REAL.read_text(encoding="utf-8"))
    assert Codebook.load(path).version == "1.0"
    path.write_text(REAL.read_text(encoding="utf-8").replace('version: "1.0"', 'version: "1.1"'), encoding="utf-8")
    assert Codebook.load(path).version == "1.1"


# ------------------------------------------------------------------------------ broken codebooks
def test_missing_file(tmp_path):
    assert "cannot read the codebook" in error_of(tmp_path / "nope.yaml")


def test_bad_yaml_names_the_line(tmp_path):
    text = REAL.read_text(encoding="utf-8")
    lines = text.splitlines()
    k = next(i for i, line in enumerate(lines) if line.strip() == "- id: energy")
    lines[k + 1] = "    name: [Energy"  # unclosed flow sequence
    msg = error_of(write(tmp_path, "\n".join(lines)))
    assert "invalid YAML" in msg and re.search(r":line \d+:", msg)


def test_missing_field(tmp_path):
    path = mutated(tmp_path, lambda d: d["frames"][1].pop("definition"))
    msg = error_of(path)
    assert "frames[1] (western_hegemony)" in msg and "missing field(s) definition" in msg
    assert re.search(r":line \d+:", msg)


def test_invalid_regex_names_label_and_pattern(tmp_path):
    path = mutated(tmp_path, lambda d: d["topics"][2]["cues"].append("(unclosed"))
    msg = error_of(path)
    assert "topics[2] (ukraine)" in msg and "invalid cue regex '(unclosed'" in msg


def test_cue_matching_empty_string(tmp_path):
    path = mutated(tmp_path, lambda d: d["topics"][0]["cues"].append("x*"))
    assert "matches the empty string" in error_of(path)


def test_duplicate_id(tmp_path):
    def dup(d):
        d["frames"][3]["id"] = "multipolar_order"
    msg = error_of(mutated(tmp_path, dup))
    assert "duplicate id 'multipolar_order'" in msg and "frames[3]" in msg


def test_invalid_id(tmp_path):
    def bad(d):
        d["topics"][0]["id"] = "Cyber Security"
    assert "invalid id 'Cyber Security'" in error_of(mutated(tmp_path, bad))


def test_unknown_section(tmp_path):
    def rename(d):
        d["framez"] = d.pop("frames")
    msg = error_of(mutated(tmp_path, rename))
    assert "unknown section 'framez'" in msg


def test_missing_section(tmp_path):
    assert "missing section 'topics'" in error_of(mutated(tmp_path, lambda d: d.pop("topics")))


def test_wrong_stance_section(tmp_path):
    def swap(d):
        d["stance_west"][0], d["stance_west"][2] = d["stance_west"][2], d["stance_west"][0]
    assert "stance_west must list exactly against, favor, none" in error_of(mutated(tmp_path, swap))


def test_unknown_frame_in_cue_frames(tmp_path):
    def bad(d):
        d["stance_west"][0]["cue_frames"] = ["western_hegemony", "hegemony"]
    msg = error_of(mutated(tmp_path, bad))
    assert "stance_west[0] (against)" in msg and "unknown frame id 'hegemony' in cue_frames" in msg


def test_unknown_label_field(tmp_path):
    def bad(d):
        d["topics"][1]["cue"] = ["oil"]
    assert "unknown field(s) cue" in error_of(mutated(tmp_path, bad))


def test_unquoted_version(tmp_path):
    text = REAL.read_text(encoding="utf-8").replace('version: "1.0"', "version: 1.0")
    assert "version must be a quoted string" in error_of(write(tmp_path, text))


def test_not_a_mapping(tmp_path):
    assert "expected a mapping" in error_of(write(tmp_path, "- just\n- a list\n"))
