"""The pictures report.md links: loss curves, the SST-2 confusion matrix, validation score per block.

Drawn with matplotlib's file-only Agg backend (no display needed) and written atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .atomic import atomic_path  # noqa: E402


def _save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def loss_curves(history: list[dict], path: Path, averaged: bool = False) -> None:
    """Mean training loss and validation loss per epoch; the kept (best) epoch marked.

    `averaged`: the validated head is the running mean of the steps' heads (`--average`), while
    the training loss is that of the steps themselves; the legend says so.
    """
    figure, axes = plt.subplots(figsize=(5.5, 3.5))
    epochs = [h["epoch"] for h in history]
    axes.plot(epochs, [h["mean_loss"] for h in history], marker=".", label="train")
    if all(h.get("val_loss") is not None for h in history):
        label = "validation (averaged head)" if averaged else "validation"
        axes.plot(epochs, [h["val_loss"] for h in history], marker=".", label=label)
    best = history[-1].get("best_epoch") if history else None
    if best:
        axes.axvline(best, color="grey", linestyle=":", label=f"kept: epoch {best}")
    axes.set(xlabel="epoch", ylabel="loss", title="Head training")
    axes.legend()
    _save(figure, path)


def confusion(matrix: list[list[int]], label_names: tuple[str, ...], path: Path) -> None:
    """Rows: true class, columns: predicted class, each cell with its count."""
    figure, axes = plt.subplots(figsize=(3.8, 3.4))
    axes.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axes.text(j, i, str(count), ha="center", va="center")
    ticks = range(len(label_names))
    axes.set(xticks=ticks, yticks=ticks, xticklabels=label_names, yticklabels=label_names,
             xlabel="predicted", ylabel="true", title="Test confusion matrix")
    _save(figure, path)


def block_scores(scores: dict[str, list[tuple[int, float]]], metric: str, path: Path) -> None:
    """Validation `metric` per candidate block, one line per readout (e.g. pooling)."""
    figure, axes = plt.subplots(figsize=(5.5, 3.5))
    for name, points in scores.items():
        axes.plot([k for k, _ in points], [v for _, v in points], marker="o", label=name)
    axes.set(xlabel="hidden state after block", ylabel=f"validation {metric}", title="Block choice")
    axes.legend()
    _save(figure, path)
