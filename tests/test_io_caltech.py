"""Tests for dlc_lookagain.io.caltech: Caltech Behavior Annotator ``*_annot.txt`` files."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io import load_pose
from dlc_lookagain.io.caltech import (
    CALTECH_HEADER,
    is_caltech_annotation,
    parse_caltech_annotation,
    read_caltech_labels,
)
from dlc_lookagain.io.labels import read_labels

CONFIG = ["base", "aggression", "bite", "social", "clinch", "nonsocial"]
ANNOT = "rat_aggression/annotations/{}_annot.txt"
POSE = "rat_aggression/dlc_csv/{}DLC_dlcrnetms5_DLC_ratJan24shuffle1_5000_el_filtered.csv"
S1_NAMES = ["social", "nonsocial", "aggression"]
S2_NAMES = ["keepdown", "clinch", "lateralthreat", "uprightposture", "freezing", "bite", "chase"]
# PROVENANCE.md of rat_aggression: frames per behavior (S1, then S2 in the order of S2_NAMES) and pose length.
PROVENANCE = {
    1: ((4082, 4151, 3767), (1404, 901, 827, 87, 386, 94, 65), 14734),
    8: ((5440, 3103, 3457), (727, 1324, 993, 322, 78, 0, 13), 15249),
    24: ((6020, 1863, 4117), (2219, 740, 278, 557, 162, 128, 33), 13384),
    40: ((3311, 3411, 5278), (2606, 1266, 1155, 101, 124, 14, 12), 14881),
}


def _annot_text(streams: dict[str, list[tuple[int, int, str]]], config=CONFIG, newline="\r\n") -> str:
    """An annotation file as the Caltech annotator writes it (CRLF, tab-separated, indented rows)."""
    lines = [CALTECH_HEADER, "", "Configuration file:"]
    lines += [f"{name}\t{name[0]}" for name in config]
    lines.append("")
    for name, rows in streams.items():
        lines += [f"{name}:\tstart\tend\ttype", "-" * 29]
        lines += [f"   \t{s}\t{e}\t{t}" for s, e, t in rows]
        lines.append("  ")
    return newline.join(lines) + newline


def _write(tmp_path, streams, name="session_annot.txt", **kw):
    p = tmp_path / name
    p.write_bytes(_annot_text(streams, **kw).encode())
    return p


# A 20-frame session: S1 scores frames 3..16 (1-based); S2 sub-types inside the aggression bout.
S1 = [(1, 2, "base"), (3, 6, "social"), (7, 12, "aggression"), (13, 16, "nonsocial"), (17, 20, "base")]
S2 = [(1, 7, "base"), (8, 9, "clinch"), (10, 10, "bite"), (11, 20, "base")]


def _expected_mask(rows, n_frames, name) -> np.ndarray:
    """Frames (0-based) of a behavior, expanded naively from 1-based inclusive rows."""
    m = np.zeros(n_frames, dtype=bool)
    for s, e, t in rows:
        if t == name:
            for f in range(s, e + 1):
                if f - 1 < n_frames:
                    m[f - 1] = True
    return m


# ------------------------------------------------------------------------------------------------------------
# Small synthetic files
# ------------------------------------------------------------------------------------------------------------


def test_round_trip_of_a_bout_table(tmp_path):
    path = _write(tmp_path, {"S1": S1, "S2": S2})
    labels = read_labels(path)
    assert labels.source_format == "caltech"
    assert labels.individuals == ["all"]
    assert labels.fps is None
    # Configuration order without base, including 'social'/'nonsocial' of S1 and bite of S2.
    assert labels.behaviors == ["aggression", "bite", "social", "clinch", "nonsocial"]
    assert labels.n_frames == 20
    for j, name in enumerate(labels.behaviors):
        np.testing.assert_array_equal(labels.present[:, 0, j], _expected_mask(S1 + S2, 20, name), err_msg=name)
    # 1-based inclusive 3..16 -> 0-based 2..15.
    np.testing.assert_array_equal(np.flatnonzero(labels.annotated[:, 0]), np.arange(2, 16))
    bouts = labels.to_bouts()
    got = {(r.behavior, r.start_frame, r.end_frame) for r in bouts.itertuples()}
    assert got == {("social", 2, 5), ("aggression", 6, 11), ("nonsocial", 12, 15), ("clinch", 7, 8),
                   ("bite", 9, 9)}
    assert labels.frame_counts() == {"aggression": 6, "bite": 1, "social": 4, "clinch": 2, "nonsocial": 4}


def test_one_frame_bouts_and_inclusive_ends(tmp_path):
    rows = [(1, 1, "social"), (2, 2, "base"), (3, 5, "aggression")]
    labels = read_caltech_labels(_write(tmp_path, {"S1": rows}))
    assert labels.n_frames == 5
    np.testing.assert_array_equal(labels.present[:, 0, labels.behaviors.index("social")], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(labels.present[:, 0, labels.behaviors.index("aggression")], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(labels.annotated[:, 0], [1, 0, 1, 1, 1])
    # Behaviors of the configuration that never occur are all-negative columns, not missing ones.
    assert labels.frame_counts()["bite"] == 0 and "clinch" in labels.behaviors


def test_base_is_unlabeled_and_s2_base_is_a_negative(tmp_path):
    labels = read_labels(_write(tmp_path, {"S1": S1, "S2": S2}))
    clinch = labels.behaviors.index("clinch")
    # S1 base: frames 0, 1, 16..19 are unknown, not "no behavior".
    assert not labels.annotated[[0, 1, 16, 17, 18, 19], 0].any()
    assert not labels.present[[0, 1, 16, 17, 18, 19]].any()
    # S2 base inside the scored S1 region: annotated, and no sub-type.
    assert labels.annotated[3, 0] and not labels.present[3, 0, clinch]


def test_later_stream_outside_s1_is_dropped_with_a_warning(tmp_path, caplog):
    s2 = [(1, 1, "bite"), (2, 20, "base")]
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.caltech"):
        labels = read_labels(_write(tmp_path, {"S1": S1, "S2": s2}))
    assert labels.frame_counts()["bite"] == 0
    assert "S1 is 'base'" in caplog.text


def test_labels_apply_to_every_animal(tmp_path):
    path = _write(tmp_path, {"S1": S1, "S2": S2})
    labels = read_labels(path, n_frames=20, individuals=["rat1", "rat2"], behaviors=["clinch", "social"])
    assert labels.individuals == ["rat1", "rat2"] and labels.behaviors == ["clinch", "social"]
    np.testing.assert_array_equal(labels.present[:, 0], labels.present[:, 1])
    np.testing.assert_array_equal(labels.annotated[:, 0], labels.annotated[:, 1])
    assert labels.present.sum() == 2 * (2 + 4)


def test_clipped_to_n_frames_with_a_warning(tmp_path, caplog):
    path = _write(tmp_path, {"S1": S1, "S2": S2})
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.caltech"):
        labels = read_labels(path, n_frames=10)
    assert labels.n_frames == 10
    assert "run past the last frame" in caplog.text and path.name in caplog.text
    np.testing.assert_array_equal(labels.present[:, 0, labels.behaviors.index("aggression")],
                                  _expected_mask(S1, 10, "aggression"))
    assert labels.annotated[2:10, 0].all()
    # Longer than the file: the extra frames are unlabeled.
    caplog.clear()
    longer = read_caltech_labels(path, n_frames=30)
    assert longer.n_frames == 30 and not longer.annotated[20:].any()
    assert "run past" not in caplog.text


def test_detection_by_first_line_not_extension(tmp_path):
    path = _write(tmp_path, {"S1": S1}, name="session.annot", newline="\n")
    assert is_caltech_annotation(path.read_bytes()[:200])
    assert not is_caltech_annotation(b"behavior,start_frame,end_frame\n")
    assert read_labels(path).source_format == "caltech"
    bom = tmp_path / "bom_annot.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_labels(bom).frame_counts() == read_labels(path).frame_counts()
    # A .txt bout table without the header is still a table.
    table = tmp_path / "bouts.txt"
    table.write_text("behavior\tstart_frame\tend_frame\ngroom\t1\t3\n")
    assert read_labels(table).source_format == "bout-table"


def test_parse_keeps_the_file_as_written(tmp_path):
    ann = parse_caltech_annotation(_write(tmp_path, {"S1": S1, "S2": S2}))
    assert ann.config == CONFIG and ann.keys["social"] == "s"
    assert ann.streams == ["S1", "S2"]
    assert ann.last_frame == 20
    first = ann.bouts.iloc[0]
    assert (first["stream"], first["start"], first["end"], first["type"]) == ("S1", 1, 2, "base")
    assert list(ann.bouts["line"])[:2] == [13, 14]  # 1-based line numbers of the first rows


def _error(tmp_path, text: str, name="bad_annot.txt") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PoseFormatError) as exc:
        read_labels(path)
    assert name in str(exc.value)
    return str(exc.value)


def _line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, ln in enumerate(text.split("\n")) if needle in ln)


def test_bad_frame_numbers_name_the_line(tmp_path):
    good = _annot_text({"S1": S1}, newline="\n")
    for bad_row, problem in [
        ("   \t7\t12.5\taggression", "not a whole number"),
        ("   \t7\tx12\taggression", "not a whole number"),
        ("   \t12\t7\taggression", "before it starts"),
        ("   \t7\t12\tsniff", "not in the configuration"),
    ]:
        text = good.replace("   \t7\t12\taggression", bad_row)
        msg = _error(tmp_path, text)
        assert problem in msg, msg
        assert f"line {_line_of(text, bad_row)}:" in msg, msg
    text = good.replace("   \t1\t2\tbase", "   \t0\t2\tbase")
    assert "1-based" in _error(tmp_path, text)
    text = good.replace("   \t7\t12\taggression", "   \t6\t12\taggression")
    assert "overlaps" in _error(tmp_path, text)


def test_truncated_files(tmp_path):
    full = _annot_text({"S1": S1, "S2": S2}, newline="\n")
    # Cut inside a row: "start end" without a type.
    cut = full[: full.index("\t11\t20\tbase") + len("\t11\t20")]
    msg = _error(tmp_path, cut)
    assert "expected 'start end type'" in msg and f"line {cut.count(chr(10)) + 1}:" in msg
    # Cut after a whole row of the last stream: it stops before the others.
    cut = full[: full.index("   \t11\t20\tbase")]
    msg = _error(tmp_path, cut)
    assert "stops at frame 10" in msg and "truncated" in msg
    # Cut after the stream header.
    cut = full[: full.index("   \t1\t2\tbase")]
    assert "has no rows" in _error(tmp_path, cut)
    # Cut in the configuration, or right after the header.
    cut = full[: full.index("S1:")]
    assert "no stream block" in _error(tmp_path, cut)
    assert "Configuration file" in _error(tmp_path, CALTECH_HEADER + "\n")


def test_bad_configuration_and_header(tmp_path):
    good = _annot_text({"S1": S1}, newline="\n")
    msg = _error(tmp_path, good.replace("social\ts\n", "social\ts\nsocial\tx\n"))
    assert "listed twice" in msg and re.search(r"line \d+:", msg)
    msg = _error(tmp_path, good.replace(CALTECH_HEADER, "Caltech Behavior Annotator - Configuration"))
    assert "line 1:" in msg and "expected the header" in msg
    text = good.replace("\n\nS1:", "\n\njunk line\nS1:")
    msg = _error(tmp_path, text)
    assert "stream header" in msg and f"line {_line_of(text, 'junk line')}:" in msg


# ------------------------------------------------------------------------------------------------------------
# The four rat_aggression sessions in ../shared/data
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize("session", sorted(PROVENANCE))
def test_rat_aggression_counts_match_provenance(shared, session):
    s1, s2, _ = PROVENANCE[session]
    labels = read_labels(shared / ANNOT.format(session), n_frames=20000)
    counts = labels.frame_counts()
    assert [counts[b] for b in S1_NAMES] == list(s1)
    assert [counts[b] for b in S2_NAMES] == list(s2)
    # Every session lists the same ten behaviors, 'bite' included where it never happens (session 8).
    assert labels.behaviors == ["aggression", "freezing", "lateralthreat", "keepdown", "chase", "uprightposture",
                                "social", "bite", "nonsocial", "clinch"]
    # S1 scores 12000 frames, one S1 behavior per scored frame; sub-types only inside aggression.
    present = labels.present[:, 0]
    assert labels.annotated.sum() == 12000
    s1_idx = [labels.behaviors.index(b) for b in S1_NAMES]
    s2_idx = [labels.behaviors.index(b) for b in S2_NAMES]
    assert (present[labels.annotated[:, 0]][:, s1_idx].sum(axis=1) == 1).all()
    assert not (present[:, s2_idx].any(axis=1) & ~present[:, labels.behaviors.index("aggression")]).any()


@pytest.mark.shared
@pytest.mark.parametrize("session", sorted(PROVENANCE))
def test_rat_aggression_on_its_pose(shared, session, caplog):
    _, _, n_pose = PROVENANCE[session]
    rec = load_pose(shared / POSE.format(session), video=False)
    assert rec.n_frames == n_pose
    assert rec.individuals == ["individual1", "individual2"]
    if session == 1:  # the first data row is entirely empty and must not be taken for a header
        assert np.isnan(rec.keypoints[0]).all()
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.caltech"):
        labels = read_labels(shared / ANNOT.format(session), n_frames=rec.n_frames, individuals=rec.individuals)
    assert labels.n_frames == n_pose and labels.individuals == rec.individuals
    np.testing.assert_array_equal(labels.present[:, 0], labels.present[:, 1])
    assert labels.annotated.sum() == 2 * 12000  # the clipped tail of session 8 is S1 base
    if session == 8:  # annotations run to frame 15256 (1-based), the pose has 15249 rows
        assert "run past the last frame" in caplog.text and "15255" in caplog.text
    else:
        assert "run past" not in caplog.text
