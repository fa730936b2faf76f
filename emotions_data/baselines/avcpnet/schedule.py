"""Linear warm-up then cosine decay, per optimizer step (the released code's bug fixed).

The authors' code kept the learning rate at its minimum throughout; here the factor goes
from ``start`` to 1 over the warm-up steps, then follows a cosine from 1 to ``minimum`` at the
last step, and stays at ``minimum`` after it.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def lr_factor(
    step: int, total_steps: int, warmup_steps: int, start: float = 0.1, minimum: float = 0.01
) -> float:
    """The multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return start + (1.0 - start) * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return minimum + (1.0 - minimum) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine:
    """A picklable schedule function for ``LambdaLR`` (its state dict then stays plain)."""

    def __init__(self, total_steps: int, warmup_steps: int, start: float, minimum: float) -> None:
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.start = start
        self.minimum = minimum

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.total_steps, self.warmup_steps, self.start, self.minimum)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    start: float = 0.1,
    minimum: float = 0.01,
) -> LambdaLR:
    return LambdaLR(optimizer, WarmupCosine(total_steps, warmup_steps, start, minimum))
