"""Single-needle retrieval (after RULER's NIAH tasks), at several context lengths.

An example of context length ``L`` is exactly ``L`` input tokens:
``haystack[:d] + needle + haystack[d:] + question + answer[:-1]``, with the needle inserted at
token depth ``d`` (a token boundary, ``d = round(depth · len(haystack))``). The targets are the
answer's tokens ``" " + value`` at the last positions; every other target is ignored. Kinds:

* ``passkey``: a 5-digit pass key in RULER's synthetic haystack ("The grass is green. ...").
* ``number``: a 7-digit magic number in real text.
* ``word``: a magic word (from :data:`WORDS`) in real text.

The real text is the ``haystack`` source split by document (:mod:`.corpus`): training examples
use the training documents, test examples the held-out ones. Tokens come from the same cached
byte-level BPE as the LM task (trained on the training documents at ``vocab_size``).

Training: example ``j`` of a stream is drawn from ``(seed, j)`` (kind, depth, value, haystack
offset), at length ``train_length`` (default: the largest context length). Test: for every kind
and context length, ``examples_per_length`` examples with depths evenly spaced over [0, 1].
Metrics (exact match of every answer token): ``test_accuracy_{kind}_{length}``,
``test_accuracy_{kind}``, ``test_accuracy_{length}`` and ``test_accuracy`` (over all examples).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .base import IGNORE_INDEX, Batch, Predict
from .corpus import load_corpus
from .scoring import predictions, token_scores
from .tokenizer import load_or_train_bpe

KINDS = ("passkey", "number", "word")
NOISE = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
TEST_SEED = 2**31
WORDS = (
    "anchor", "apple", "arrow", "basket", "bottle", "bridge", "bucket", "button", "camera", "candle",
    "carpet", "castle", "cherry", "circle", "cloud", "compass", "copper", "cotton", "desert", "diamond",
    "dragon", "engine", "falcon", "feather", "forest", "garden", "glacier", "hammer", "harbor", "helmet",
    "island", "jacket", "kettle", "ladder", "lantern", "lemon", "magnet", "marble", "meadow", "mirror",
    "monkey", "needle", "orange", "oyster", "paddle", "parrot", "pebble", "pencil", "pepper", "pillow",
    "planet", "pocket", "puzzle", "rabbit", "ribbon", "rocket", "saddle", "silver", "spider", "sponge",
    "statue", "tiger", "tomato", "tunnel", "turtle", "velvet", "violin", "wagon", "walnut", "window",
)  # fmt: skip


@dataclass(frozen=True)
class Template:
    needle: str
    question: str


TEMPLATES = {
    "passkey": Template(
        " The pass key is {value}. Remember it. {value} is the pass key.", "\nWhat is the pass key? The pass key is"
    ),
    "number": Template(
        " The special magic number is: {value}.", "\nWhat is the special magic number? The special magic number is:"
    ),
    "word": Template(
        " The special magic word is: {value}.", "\nWhat is the special magic word? The special magic word is:"
    ),
}


def needle_value(kind: str, rng: np.random.Generator) -> str:
    """A random needle value of ``kind``."""
    if kind == "passkey":
        return str(rng.integers(10_000, 100_000))
    if kind == "number":
        return str(rng.integers(1_000_000, 10_000_000))
    return WORDS[rng.integers(len(WORDS))]


class Needle:
    """Needle-in-a-haystack retrieval (see the module docstring)."""

    name = "needle"

    def __init__(
        self,
        *,
        cache_dir: Path,
        context_lengths: Sequence[int] = (256, 512),
        kinds: Sequence[str] = KINDS,
        examples_per_length: int = 100,
        haystack: str = "shakespeare",
        vocab_size: int = 4096,
        train_length: int | None = None,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown or not kinds:
            raise ValueError(f"needle: kinds must be a non-empty subset of {KINDS} (got {list(kinds)})")
        self.kinds, self.context_lengths = tuple(kinds), tuple(context_lengths)
        corpus = load_corpus(haystack)
        train_texts = [d.text for d in corpus.train]
        self.bpe = load_or_train_bpe(train_texts, vocab_size, cache_dir)
        self.vocab_size = self.bpe.vocab_size
        self.seq_len = train_length or max(self.context_lengths)
        eot = self.bpe.eot_id
        self.text = {
            split: stream[stream != eot]
            for split, stream in (
                ("train", self.bpe.stream(train_texts, cache_dir)),
                ("test", self.bpe.stream([d.text for d in corpus.held_out], cache_dir)),
            )
        }
        self.noise = np.asarray(self.bpe.encode(NOISE), dtype=np.int64)
        self.test = {
            (kind, length): self._test_set(kind, length, examples_per_length)
            for kind in self.kinds
            for length in self.context_lengths
        }

    def example(
        self, kind: str, length: int, depth: float, rng: np.random.Generator, split: str
    ) -> tuple[Tensor, Tensor]:
        """One example of context ``length``: ``inputs, targets`` LongTensor ``[length]``."""
        template, value = TEMPLATES[kind], needle_value(kind, rng)
        needle = self.bpe.encode(template.needle.format(value=value))
        tail = self.bpe.encode(template.question)
        answer = self.bpe.encode(" " + value)
        n_hay = length + 1 - len(needle) - len(tail) - len(answer)
        if n_hay < 1:
            needs = length + 1 - n_hay
            raise ValueError(f"needle: context length {length} is too short for a {kind!r} needle (needs >= {needs})")
        hay = self._haystack(kind, split, n_hay, rng)
        at = round(depth * n_hay)
        sequence = torch.as_tensor(np.concatenate([hay[:at], needle, hay[at:], tail, answer]), dtype=torch.long)
        targets = torch.full((length,), IGNORE_INDEX, dtype=torch.long)
        targets[length - len(answer) :] = sequence[length + 1 - len(answer) :]
        return sequence[:-1], targets

    def _haystack(self, kind: str, split: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` haystack tokens: the noise sentences from a random phase, or a random window of text."""
        if kind == "passkey":
            period = len(self.noise)
            start = rng.integers(period)
            return np.tile(self.noise, math.ceil((start + n) / period))[start : start + n]
        text = self.text[split]
        if len(text) < n:
            raise ValueError(f"needle: the {split} haystack text has {len(text)} tokens, fewer than {n}")
        start = rng.integers(len(text) - n + 1)
        return text[start : start + n]

    def _test_set(self, kind: str, length: int, count: int) -> tuple[Tensor, Tensor]:
        depths = np.linspace(0.0, 1.0, count) if count > 1 else [0.5]
        examples = [
            self.example(kind, length, depth, np.random.default_rng([TEST_SEED, KINDS.index(kind), length, i]), "test")
            for i, depth in enumerate(depths)
        ]
        inputs, targets = zip(*examples, strict=True)
        return torch.stack(inputs), torch.stack(targets)

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        """Batches ``[batch_size, train_length]`` of fresh training examples (kinds mixed)."""
        step = start_step
        while True:
            examples = []
            for j in range(step * batch_size, (step + 1) * batch_size):
                rng = np.random.default_rng([seed, j])
                kind = self.kinds[rng.integers(len(self.kinds))]
                examples.append(self.example(kind, self.seq_len, rng.random(), rng, "train"))
            inputs, targets = zip(*examples, strict=True)
            yield torch.stack(inputs), torch.stack(targets)
            step += 1

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, float]:
        """Exact-match accuracy per kind and length, per kind, per length and overall."""
        correct: dict[tuple[str, int], Tensor] = {}
        for key, (inputs, targets) in self.test.items():
            parts = []
            for logits, batch_targets in predictions(predict, inputs, targets, batch_size):
                _, hit, mask = token_scores(logits, batch_targets)
                parts.append((hit | ~mask).all(dim=1).cpu())
            correct[key] = torch.cat(parts).float()

        def mean(keys: list[tuple[str, int]]) -> float:
            return torch.cat([correct[k] for k in keys]).mean().item()

        keys = list(correct)
        metrics = {"test_accuracy": mean(keys)}
        metrics |= {f"test_accuracy_{kind}": mean([k for k in keys if k[0] == kind]) for kind in self.kinds}
        metrics |= {f"test_accuracy_{n}": mean([k for k in keys if k[1] == n]) for n in self.context_lengths}
        metrics |= {f"test_accuracy_{kind}_{n}": correct[(kind, n)].mean().item() for kind, n in keys}
        return metrics
