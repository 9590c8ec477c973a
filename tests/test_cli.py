"""The dlc-lookagain command line: exit codes, messages, and what it prints."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from dlc_lookagain.cli import EXIT_BAD_INPUT, EXIT_OK, main

MULTI = "deeplabcut/examples/multi_mouse-dlc_team-2022-04-12"


def test_help_speaks_plainly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "analyze" in out and "inspect" in out and "DeepLabCut" in out
    for command in ("analyze", "inspect", "pretrain", "train", "evaluate", "export"):
        assert command in out


@pytest.mark.parametrize("command", ["analyze", "export", "inspect", "pretrain", "train", "evaluate"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "config.yaml" in out and len(out) > 300


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze"])
    assert exit_info.value.code == 2


def test_inspect_project_prints_one_line_per_recording(shared, capsys):
    assert main(["-q", "inspect", str(shared / MULTI / "config.yaml")]) == EXIT_OK
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["pose", "file", "frames"]
    assert len(lines) == 2
    row = lines[1]
    assert "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_el_filtered.h5" in row
    # 3 mice; the unique bodyparts ('single') are landmarks, not an animal
    assert " 31 " in row and "m3v1mp4short.mp4" in row and "  3        3  " in row


def test_analyze_writes_behavior_files_into_a_copy_and_resumes(shared, tmp_path, capsys, caplog):
    """Real DLC project (another skeleton, 3 mice + 'single'), copied: files appear beside the poses."""
    import shutil

    project = tmp_path / "multi"
    shutil.copytree(shared / MULTI, project)
    config = str(project / "config.yaml")
    assert main(["-q", "analyze", config, "--unfiltered", "--top-k", "0.5"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "_el_behaviors.csv" in out and "looked" in out
    written = list(project.rglob("*_el_behaviors.csv"))
    assert len(written) == 1 and (written[0].parent / written[0].name.replace("_behaviors.csv", "_bouts.csv")).exists()
    # A second run has nothing to do and says so.
    with caplog.at_level(logging.INFO):
        assert main(["analyze", config, "--unfiltered", "--top-k", "0.5"]) == EXIT_OK
    assert "nothing to do" in caplog.text and "(--overwrite recomputes)" in caplog.text  # a flag, not a keyword
    assert "up to date" in capsys.readouterr().out


def test_analyze_rejects_a_bad_budget(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(tmp_path), "--top-k", "2"])
    assert exit_info.value.code == 2
    assert "fraction between 0 and 1" in capsys.readouterr().err


def test_bad_input_exit_code_and_message(tmp_path, caplog):
    bad = tmp_path / "poses.csv"
    bad.write_text("")
    with caplog.at_level(logging.ERROR):
        assert main(["inspect", str(bad)]) == EXIT_BAD_INPUT
    assert "poses.csv" in caplog.text


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "dlc_lookagain.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "dlc-lookagain" in proc.stdout


def test_train_pretrain_evaluate_pass_their_options(monkeypatch, tmp_path, capsys):
    """The commands call the API with what the user typed (the training itself is tested elsewhere)."""
    from dlc_lookagain import evaluation, project_training

    seen = {}

    def fake_train(path, labels=None, **kw):
        seen["train"] = (path, labels, kw)
        return tmp_path / "behavior.pt"

    def fake_pretrain(path, **kw):
        seen["pretrain"] = (path, kw)
        return tmp_path / "pretrained.pt"

    monkeypatch.setattr(project_training, "train", fake_train)
    monkeypatch.setattr(project_training, "pretrain", fake_pretrain)
    assert main(["-q", "train", "cfg.yaml", "--labels", "lab", "--behaviors", "groom", "rear", "--steps", "7",
                 "--seed", "3", "--name", "mine", "--look", "0.1"]) == EXIT_OK
    path, labels, kw = seen["train"]
    assert kw["look"] == 0.1
    assert (path, labels) == ("cfg.yaml", "lab")
    assert kw["behaviors"] == ["groom", "rear"] and kw["steps"] == 7 and kw["seed"] == 3 and kw["name"] == "mine"
    assert kw["progress"] is False
    assert main(["pretrain", "cfg.yaml", "--steps", "5"]) == EXIT_OK
    assert seen["pretrain"][1]["steps"] == 5
    assert "model saved" in capsys.readouterr().out

    def missing_labels(*a, **k):
        raise FileNotFoundError("cfg.yaml: no label files found")

    monkeypatch.setattr(evaluation, "evaluate", missing_labels)
    assert main(["-q", "evaluate", "cfg.yaml"]) == EXIT_BAD_INPUT


def test_steps_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "cfg.yaml", "--steps", "0"])
    assert exit_info.value.code == 2
    assert "1 or more" in capsys.readouterr().err


def test_export_after_sleap_analysis_h5(tmp_path, capsys):
    """The post-export step for SLEAP's 'Export Analysis HDF5': figures and BORIS beside the file."""
    import shutil
    from pathlib import Path

    import sleap_io as sio

    videos = Path(__file__).resolve().parents[1] / "sample_project" / "videos"
    shutil.copy(videos / "sample_000.mp4", tmp_path / "sample_000.mp4")
    slp = tmp_path / "sample_000.mp4.predictions.slp"
    shutil.copy(videos / "sample_000.mp4.predictions.slp", slp)
    labels = sio.load_slp(str(slp))
    h5 = tmp_path / "sample_000.analysis.h5"
    sio.save_analysis_h5(labels, str(h5), labels_path=str(slp))
    assert main(["-q", "export", str(h5), "--to", "figures", "boris", "--top-k", "0"]) == EXIT_OK
    for suffix in ("_behaviors.csv", "_bouts.csv", "_ethogram.png", "_time_budget.png", "_behaviors_boris.tsv"):
        assert (tmp_path / f"sample_000.analysis{suffix}").is_file(), suffix
    assert "sample_000.analysis_behaviors.csv" in capsys.readouterr().out
    # A DeepLabCut file is not a SLEAP analysis export, whatever its name says.
    fake = tmp_path / "dlc.analysis.h5"
    shutil.copy(videos / "sample_000DLC_dlcrnetms5_synthmiceMay06shuffle1_200000_el.h5", fake)
    assert main(["-q", "export", str(fake)]) == EXIT_BAD_INPUT


def test_an_unusable_file_is_reported_once(tmp_path, caplog):
    """Issue 14 (item 9): the error of a file analyze cannot read was printed twice."""
    bad = tmp_path / "x.txt"
    bad.write_text("a,b\n")
    with caplog.at_level(logging.ERROR):
        assert main(["analyze", str(bad)]) == EXIT_BAD_INPUT
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "unknown pose file type" in r.getMessage()]
    assert len(errors) == 1
