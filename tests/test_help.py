"""--help groups the flags (data, model, readout, training, output) and says what each script does by default."""

from __future__ import annotations

import re

import pytest

import eval as eval_script
import predict as predict_script
import train as train_script


def help_text(script, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        script.main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def sections(text: str) -> list[str]:
    return re.findall(r"^([a-z][\w ()]*):$", text, flags=re.M)


def test_train_and_eval_group_their_flags(capsys):
    assert sections(help_text(train_script, ["--task", "squad"], capsys)) == [
        "options", "data", "model", "readout", "training", "output"]
    text = help_text(eval_script, ["--task", "sst2"], capsys)
    assert sections(text) == ["options", "data", "model", "readout", "output"]
    assert "runs/<task>" not in text and "print only" in text  # eval.py writes nothing without --output


def test_predict_groups_its_flags(capsys):
    assert sections(help_text(predict_script, [], capsys)) == ["options", "input (one of)", "output", "page", "model"]
