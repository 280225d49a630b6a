"""What a run leaves behind: the head file with its provenance, and the human-readable report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from errors import UserError
from llama import LlamaConfig
from tasks import Task

from .atomic import atomic_path

HEAD_FILE = "head.safetensors"


NOT_ARCHITECTURE = ("torch_dtype", "bos_token_id", "eos_token_id", "pad_token_id")


def config_fingerprint(config: LlamaConfig) -> str:
    """A short hash of the base's architecture (not its storage dtype or special-token ids).

    A head only fits hidden states of the shape and kind it was trained on; two checkpoints
    of one architecture (a base model and its instruct tune) share a fingerprint, so
    eval.py also compares the base model names and warns when they differ.
    """
    fields = {k: v for k, v in config.to_dict().items() if k not in NOT_ARCHITECTURE}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def save_head(path: Path, tensors: dict[str, torch.Tensor], *, base_model: str, config: LlamaConfig,
              task: str, label_names: tuple[str, ...], revision: str | None, readout: dict,
              decision: dict | None = None) -> None:
    """Only the head's tensors, plus metadata naming the base model they belong to, the readout
    (block, pooling, layout) they were trained on, which eval.py rebuilds, and the prediction rule's
    settings chosen on validation (`Task.decision_rule`), which eval.py applies."""
    metadata = {"base_model": base_model, "base_revision": revision or "",
                "base_config_sha256": config_fingerprint(config), "task": task,
                "label_names": json.dumps(list(label_names)), "readout": json.dumps(readout),
                "decision": json.dumps(decision or {})}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_head(directory: Path, *, config: LlamaConfig, task: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a saved head, refusing one trained for another task or on another base model."""
    path = directory / HEAD_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: --head needs the output directory of a train.py run")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise UserError(f"{path} is unreadable ({err}); it is truncated or not a head file: retrain it or "
                        "download it again") from None
    if metadata.get("task") != task:
        raise UserError(f"{path} is a {metadata.get('task')!r} head, not {task!r}: pass --task {metadata.get('task')}")
    if metadata.get("base_config_sha256") != config_fingerprint(config):
        raise UserError(f"{path} was trained on base model {metadata.get('base_model')!r}, whose architecture "
                        f"differs from this --model; pass --model {metadata.get('base_model')}")
    return tensors, metadata


def _fmt(value: float | None) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def lookup(metrics: dict | None, key: str):
    """metrics["a"]["b"] for key "a.b"; None where a part is missing."""
    for part in key.split("."):
        if not isinstance(metrics, dict) or part not in metrics:
            return None
        metrics = metrics[part]
    return metrics


def render_report(*, task: Task, model: str, metrics: dict, params: dict, history: list[dict],
                  examples: list[dict], settings: dict, readout: dict, selection: list[dict],
                  pictures: list[tuple[str, str]]) -> str:
    """report.md: the zero-shot vs fine-tuned table, parameters, training curves and sample predictions."""
    columns = [("Zero-shot (untrained head)", "zero_shot_head"), ("Zero-shot (prompt)", "zero_shot_prompt"),
               ("Fine-tuned", "fine_tuned")]
    lines = [f"# {task.name} head on frozen {model}", "",
             "| Metric | " + " | ".join(c for c, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, key in task.metric_rows(metrics):
        lines.append(f"| {label} | " + " | ".join(_fmt(lookup(metrics.get(k), key)) for _, k in columns) + " |")
    lines += ["", "## Parameters", "", "| | count |", "|---|---|",
              f"| total | {params['total']:,} |", f"| trainable (head) | {params['trainable']:,} |",
              f"| frozen (base) | {params['frozen']:,} |", "", "## Training", "",
              "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), "",
              "Readout (what the head reads): " + ", ".join(f"{k}={v}" for k, v in readout.items()), ""]
    if selection:
        lines += ["Chosen on the validation slice among:", "", "| readout | validation loss | validation "
                  f"{task.main_metric} | epoch |", "|---|---|---|---|"]
        lines += [f"| {', '.join(f'{k}={v}' for k, v in row.items() if k not in SELECTION_SCORES)} | "
                  f"{row['val_loss']:.4f} | {_fmt(row['val_metric'])} | {row['best_epoch']} |" for row in selection]
        lines.append("")
    validated = all("val_loss" in h for h in history)
    lines += ["| epoch | train loss | " + ("validation loss | " if validated else "") + "seconds |",
              "|---|---|" + ("---|" if validated else "") + "---|"]
    lines += [f"| {h['epoch']}{' (kept)' if h.get('best_epoch') == h['epoch'] == history[-1]['best_epoch'] else ''} | "
              f"{h['mean_loss']:.4f} | " + (f"{h['val_loss']:.4f} | " if validated else "") + f"{h['seconds']:.1f} |"
              for h in history]
    lines += ["", *[f"![{title}]({name})" for title, name in pictures]]
    lines += ["", "## Example predictions (fine-tuned)", ""]
    lines += [f"- {json.dumps(e, ensure_ascii=False)}" for e in examples]
    return "\n".join(lines) + "\n"


SELECTION_SCORES = ("val_loss", "val_metric", "best_epoch")
