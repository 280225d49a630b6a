"""Publish a trained head (not the base) to the Hugging Face Hub."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import safe_open

from errors import UserError

UPLOADED = ["head.safetensors", "train_config.json", "metrics.json"]


def model_card(report: str, base_model: str, task: str, label_names: list[str]) -> str:
    """The card: front matter, the run's report, how to use the head, and what each output row means."""
    front_matter = f"---\nbase_model: {base_model}\nlibrary_name: pytorch\ntags:\n- {task}\n- frozen-base-head\n---\n\n"
    usage = ("\n## Use\n\nThis repository holds only the trained head; the frozen base is "
             f"`{base_model}`.\n\n```\npython eval.py --task {task} --model {base_model} --head <this repo id>\n```\n")
    id2label = json.dumps({str(k): name for k, name in enumerate(label_names)}, ensure_ascii=False)
    labels = f"\n## Labels\n\nOutput row k of the head (`id2label`, also in the head file's metadata): `{id2label}`\n"
    return front_matter + report + usage + labels


def push_head(output_dir: Path, repo_id: str, *, base_model: str, task: str, token: str | None = None) -> str:
    """Create the repo if needed and upload the head, config, metrics and a model card in one commit."""
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd

    token = token or os.environ.get("HF_TOKEN")
    report = (output_dir / "report.md").read_text(encoding="utf-8")
    with safe_open(str(output_dir / "head.safetensors"), framework="pt") as f:
        label_names = json.loads((f.metadata() or {}).get("label_names", "[]"))
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(output_dir / name))
                  for name in UPLOADED if (output_dir / name).is_file()]
    operations.append(CommitOperationAdd(path_in_repo="README.md",
                                         path_or_fileobj=model_card(report, base_model, task, label_names).encode()))
    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, exist_ok=True)
        info = api.create_commit(repo_id, operations=operations, commit_message=f"Upload {task} head")
    except Exception as err:  # auth, network and HTTP errors all end the same way for the user
        raise UserError(f"could not push to {repo_id!r} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                        "log in with `huggingface-cli login` or set HF_TOKEN") from None
    return getattr(info, "commit_url", repo_id)
