"""The interface between a task and the trainer.

A task owns its data: a deterministic, endless stream of training batches and a held-out split
that it scores itself. Batches are index-based: ``train_batches(batch_size, seed, start_step=s)``
yields exactly the batches ``s, s + 1, ...`` of the stream that starts at 0, at the cost of
generating only those, so a resumed trial passes its step count and needs no iterator state
(tasks have no ``state_dict``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from torch import Tensor

IGNORE_INDEX = -100
"""Target of a position that is not scored (as ``F.cross_entropy``'s default ``ignore_index``)."""

Batch = tuple[Tensor, Tensor]
"""``(inputs, targets)``: LongTensor ``[B, T]`` each; targets are :data:`IGNORE_INDEX` where not scored."""

Predict = Callable[[Tensor], Tensor]
"""``predict(inputs [B, T]) -> logits [B, T, V]`` (any device; the task moves its targets there)."""


class Task(Protocol):
    """A training stream plus a held-out evaluation with flat, sliced metrics."""

    name: str
    vocab_size: int
    """Model vocabulary, special tokens included; every input and target id is below it."""
    seq_len: int
    """Length ``T`` of the training sequences."""

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        """Endless batches ``start_step, start_step + 1, ...``; the same ``(batch_size, seed)``
        gives the same stream, and starting at ``s`` equals skipping ``s`` batches."""
        ...

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, float]:
        """Score ``predict`` on the held-out split; metric name -> value."""
        ...
