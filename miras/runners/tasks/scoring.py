"""Scoring helpers shared by the tasks: batched prediction and per-token loss and hits."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import IGNORE_INDEX, Predict


def predictions(predict: Predict, inputs: Tensor, targets: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Run ``predict`` over ``inputs [N, T]`` in batches, without gradients.

    Yields:
        ``(logits [b, T, V] float32, targets [b, T])``, the targets on the logits' device.
    """
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            logits = predict(inputs[start : start + batch_size]).float()
            yield logits, targets[start : start + batch_size].to(logits.device)


def token_scores(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-position negative log-likelihood (nats), argmax hit and scored mask.

    Args:
        logits: ``[B, T, V]``.
        targets: ``[B, T]``, :data:`IGNORE_INDEX` where not scored.
    Returns:
        ``nll [B, T]`` (0 where not scored), ``hit [B, T]`` bool (False where not scored),
        ``mask [B, T]`` bool.
    """
    mask = targets != IGNORE_INDEX
    nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none")
    hit = (logits.argmax(-1) == targets) & mask
    return nll, hit, mask
