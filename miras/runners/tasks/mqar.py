"""Multi-query associative recall (MQAR), the generator of zoology (Arora et al., 2024).

Each sequence of length ``T`` starts with ``k`` key-value pairs ``k1 v1 k2 v2 ...`` (keys from
``[1, V/2)``, values from ``[V/2, V)``, each drawn without replacement inside the sequence).
Every key is then queried once: key ``i`` is placed at position ``2k + 2 g_i``, where the gaps
``g`` are ``k`` draws without replacement from ``range((T - 2k) // 2)`` with
``P(g) ∝ (g + 1) ** (a - 1)`` (so short gaps are likely). The target at a query position is the
key's value; every other target is ignored. All other positions hold uniform noise tokens from
``[0, V)``. This is zoology's ``multiquery_ar`` distribution, sampled here with counter-based
draws (see :mod:`.counter_rng`) instead of ``np.random.choice`` row by row: an example is a pure
function of its seed, and train and test use disjoint seed ranges.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .base import IGNORE_INDEX, Batch, Predict
from .cache import atomic_write, content_key
from .counter_rng import uniforms
from .sampling import shuffled_batch
from .scoring import predictions, token_scores

GENERATOR_VERSION = 1
"""Bump when the examples a seed produces change; it is part of every cache key."""
TRAIN_SEED_START = 0
TEST_SEED_START = 2**40
"""Train examples use seeds ``[0, train_examples)``, test examples ``[2**40, 2**40 + test_examples)``."""

_KEYS, _VALUES, _GAPS, _NOISE = range(4)  # independent draw streams of an example


def check_mqar(vocab_size: int, seq_len: int, num_kv_pairs: int) -> None:
    """Raise ``ValueError`` unless zoology's constraints hold (even ``T < V``, ``4k <= T``)."""
    if seq_len % 2 or seq_len >= vocab_size:
        raise ValueError(f"mqar: seq_len must be even and smaller than vocab_size {vocab_size} (got {seq_len})")
    if num_kv_pairs < 1 or 4 * num_kv_pairs > seq_len:
        raise ValueError(f"mqar: need 1 <= num_kv_pairs <= seq_len / 4 = {seq_len // 4} (got {num_kv_pairs})")


def _ordered_sample(u: np.ndarray, low: int, high: int, size: int) -> np.ndarray:
    """Uniform ordered samples without replacement from ``[low, high)``.

    Args:
        u: ``[N, 2 * size]`` uniforms: the first half picks the subset (Floyd's algorithm), the
            second half its order.
    Returns:
        int64 ``[N, size]``, distinct within each row.
    """
    n_rows, span = len(u), high - low
    picks = np.empty((n_rows, size), dtype=np.int64)
    for j, top in enumerate(range(span - size, span)):
        r = np.floor(u[:, j] * (top + 1)).astype(np.int64)  # uniform in [0, top]
        taken = (picks[:, :j] == r[:, None]).any(axis=1)
        picks[:, j] = np.where(taken, top, r)
    order = np.argsort(u[:, size:], axis=1)
    return np.take_along_axis(picks, order, axis=1) + low


def _power_law_gaps(u: np.ndarray, power_a: float, size: int) -> np.ndarray:
    """``size`` draws without replacement from ``range(space)``, ``P(g) ∝ (g + 1) ** (a - 1)``,
    in draw order (Gumbel top-k, equal in law to sequential sampling).

    Args:
        u: ``[N, space]`` uniforms.
    Returns:
        int64 ``[N, size]``.
    """
    space = u.shape[1]
    log_p = (power_a - 1) * np.log(np.arange(1, space + 1))
    scores = log_p[None, :] - np.log(-np.log(u))
    return np.argsort(-scores, axis=1, kind="stable")[:, :size]


def mqar_examples(
    seeds: np.ndarray, *, vocab_size: int, seq_len: int, num_kv_pairs: int, power_a: float
) -> tuple[Tensor, Tensor]:
    """Generate one MQAR example per seed.

    Args:
        seeds: ``[N]`` non-negative example seeds.
    Returns:
        ``inputs, targets``: LongTensor ``[N, seq_len]``; targets are the values at the query
        positions and :data:`IGNORE_INDEX` elsewhere.
    """
    check_mqar(vocab_size, seq_len, num_kv_pairs)
    k, half = num_kv_pairs, vocab_size // 2
    context = 2 * k
    keys = _ordered_sample(uniforms(seeds, _KEYS, 2 * k), 1, half, k)
    values = _ordered_sample(uniforms(seeds, _VALUES, 2 * k), half, vocab_size, k)
    gaps = _power_law_gaps(uniforms(seeds, _GAPS, (seq_len - context) // 2), power_a, k)

    inputs = np.floor(uniforms(seeds, _NOISE, seq_len) * vocab_size).astype(np.int64)
    inputs[:, 0:context:2] = keys
    inputs[:, 1:context:2] = values
    rows = np.arange(len(inputs))[:, None]
    query_positions = context + 2 * gaps
    inputs[rows, query_positions] = keys
    targets = np.full_like(inputs, IGNORE_INDEX)
    targets[rows, query_positions] = values
    return torch.from_numpy(inputs), torch.from_numpy(targets)


class MQAR:
    """The MQAR task: a fixed training set (cached), test sets at one or more ``num_kv_pairs``.

    Metrics: ``test_accuracy`` (fraction of query tokens predicted exactly, over every test
    slice), ``test_loss`` (mean cross-entropy on query tokens) and ``test_accuracy_kv{k}`` per
    slice. Training batches shuffle the training set per epoch, seeded by ``(seed, epoch)``.
    """

    name = "mqar"

    def __init__(
        self,
        *,
        cache_dir: Path,
        vocab_size: int = 8192,
        seq_len: int = 64,
        num_kv_pairs: int = 4,
        train_examples: int = 20000,
        test_examples: int = 1000,
        power_a: float = 0.01,
        test_num_kv_pairs: Sequence[int] | None = None,
    ) -> None:
        if not 0 < train_examples <= TEST_SEED_START:
            raise ValueError(f"mqar: train_examples must be in [1, {TEST_SEED_START}] (got {train_examples})")
        self.vocab_size, self.seq_len, self.power_a = vocab_size, seq_len, power_a
        self.cache_dir = Path(cache_dir)
        self.train_inputs, self.train_targets = self._split("train", num_kv_pairs, TRAIN_SEED_START, train_examples)
        slices = list(dict.fromkeys(test_num_kv_pairs or [num_kv_pairs]))
        self.test = {kv: self._split("test", kv, TEST_SEED_START, test_examples) for kv in slices}

    def cache_path(self, split: str, num_kv_pairs: int, seed_start: int, count: int) -> Path:
        """Where a split is cached: the hash of the generator config, split and seed range."""
        key = content_key(
            {
                "generator": "mqar",
                "version": GENERATOR_VERSION,
                "vocab_size": self.vocab_size,
                "seq_len": self.seq_len,
                "num_kv_pairs": num_kv_pairs,
                "power_a": self.power_a,
                "split": split,
                "seeds": [seed_start, seed_start + count],
            }
        )
        return self.cache_dir / "mqar" / f"{split}-kv{num_kv_pairs}-{key}.pt"

    def _split(self, split: str, num_kv_pairs: int, seed_start: int, count: int) -> tuple[Tensor, Tensor]:
        path = self.cache_path(split, num_kv_pairs, seed_start, count)
        if path.exists():
            data = torch.load(path, weights_only=True)
            return data["inputs"], data["targets"]
        inputs, targets = mqar_examples(
            np.arange(seed_start, seed_start + count),
            vocab_size=self.vocab_size,
            seq_len=self.seq_len,
            num_kv_pairs=num_kv_pairs,
            power_a=self.power_a,
        )
        atomic_write(path, lambda tmp: torch.save({"inputs": inputs, "targets": targets}, tmp))
        return inputs, targets

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        """Batches ``[batch_size, seq_len]`` of the training set, epoch after epoch."""
        step = start_step
        while True:
            index = torch.from_numpy(shuffled_batch(len(self.train_inputs), batch_size, seed, step))
            yield self.train_inputs[index], self.train_targets[index]
            step += 1

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, float]:
        """Accuracy and loss on the query tokens of every test slice."""
        metrics: dict[str, float] = {}
        hits = nll = total = 0.0
        for kv, (inputs, targets) in self.test.items():
            slice_hits = slice_total = 0.0
            for logits, batch_targets in predictions(predict, inputs, targets, batch_size):
                token_nll, hit, mask = token_scores(logits, batch_targets)
                slice_hits += hit.sum().item()
                slice_total += mask.sum().item()
                nll += token_nll.sum().item()
            metrics[f"test_accuracy_kv{kv}"] = slice_hits / slice_total
            hits, total = hits + slice_hits, total + slice_total
        return {"test_accuracy": hits / total, "test_loss": nll / total, **metrics}
