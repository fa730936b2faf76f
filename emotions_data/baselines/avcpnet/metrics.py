"""Classification metrics the authors report (WAR, UAR, F1s, per-class accuracy, confusion)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from emotions_data.schema.atomic import atomic_path


def confusion_matrix(
    target: npt.ArrayLike, pred: npt.ArrayLike, num_classes: int
) -> npt.NDArray[np.int64]:
    """Rows: true class, columns: predicted class."""
    t = np.asarray(target, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def classification_metrics(
    target: npt.ArrayLike, pred: npt.ArrayLike, classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy (WAR), UAR, macro-F1, weighted-F1, per-class accuracy and the confusion matrix.

    Classes absent from ``target`` are left out of UAR and macro-F1 (as scikit-learn's recall
    over present labels would be undefined for them) and reported as ``null`` per class.
    """
    k = len(classes)
    cm = confusion_matrix(target, pred, k)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    total = int(support.sum())
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(k), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    return {
        "n": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / total) if total else 0.0,
        "per_class_accuracy": {
            c: (float(recall[i]) if present[i] else None) for i, c in enumerate(classes)
        },
        "confusion_matrix": {"classes": list(classes), "matrix": cm.tolist()},
    }


def plot_confusion(metrics: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Write the confusion matrix as a PNG (row-normalised colours, raw counts as text)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = metrics["confusion_matrix"]["classes"]
    cm = np.asarray(metrics["confusion_matrix"]["matrix"], dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(classes), 0.8 + 0.7 * len(classes)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", color=color, fontsize=8)
    ax.set_title(title or f"accuracy {metrics['accuracy']:.3f}, UAR {metrics['uar']:.3f}")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
