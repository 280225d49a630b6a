"""What a run leaves behind: the head file with its provenance, and the human-readable report."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from errors import UserError
from heads.head_file import (HEAD_FILE, config_fingerprint, head_kind, read_head_file, readout_from_fields,
                             transformers_class)
from llama import LlamaConfig
from tasks import Task

from .atomic import atomic_path

def save_head(path: Path, tensors: dict[str, torch.Tensor], *, base_model: str, config: LlamaConfig,
              task: str, label_names: tuple[str, ...], revision: str | None, readout: dict,
              decision: dict | None = None, use: dict | None = None, base_dtype: torch.dtype | None = None) -> None:
    """Only the head's tensors, plus what using them needs (`heads.head_file` documents every key): the
    base model they belong to, the readout (block, pooling, layout) they were trained on, the settings a
    user applies as training did, the prediction rule's settings chosen on validation (`Task.decision_rule`),
    and whether a transformers class reproduces the head."""
    interop = transformers_class(readout_from_fields(head_kind(tensors), readout, path), config.num_hidden_layers)
    metadata = {"base_model": base_model, "base_revision": revision or "",
                "base_config_sha256": config_fingerprint(config), "task": task,
                "base_dtype": str(base_dtype).removeprefix("torch.") if base_dtype is not None else "",
                "label_names": json.dumps(list(label_names)), "readout": json.dumps(readout),
                "use": json.dumps(use or {}), "decision": json.dumps(decision or {}), "transformers_class": interop}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_head(directory: Path, *, config: LlamaConfig, task: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a saved head, refusing one trained for another task or on another base model."""
    head = read_head_file(directory)
    if head.task != task:
        raise UserError(f"{head.path} is a {head.task!r} head, not {task!r}: pass --task {head.task}")
    if head.base_config_sha256 != config_fingerprint(config):
        raise UserError(f"{head.path} was trained on base model {head.base_model!r}, whose architecture "
                        f"differs from this --model; pass --model {head.base_model}")
    with safe_open(str(head.path), framework="pt") as f:
        metadata = f.metadata()
    return head.tensors, metadata


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
