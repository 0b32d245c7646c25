"""Language modelling on real text with a locally trained byte-level BPE.

Data: :func:`.corpus.load_corpus` splits the source by document; the BPE is trained on the
training documents only. Each split is one token stream (documents joined by EOT); training
windows of ``seq_len + 1`` tokens start at uniform random offsets drawn from ``(seed, step)``,
and ``token_budget`` keeps only the first that many tokens of the training stream. Evaluation
scores ``eval_windows`` fixed, evenly spaced, non-overlapping windows of the held-out stream,
never predicting an EOT target.

Metrics: ``val_loss`` (nats per token), ``val_perplexity``, and ``val_bits_per_byte`` = total
nats / (ln 2 · UTF-8 bytes of the scored target tokens), comparable across tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import IGNORE_INDEX, Batch, Predict
from .corpus import Corpus, load_corpus
from .scoring import predictions, token_scores
from .tokenizer import ByteBPE, load_or_train_bpe


def text_tokenizer(
    source: str, vocab_size: int, dataset: Mapping[str, Any] | None, cache_dir: Path
) -> tuple[Corpus, ByteBPE]:
    """A text task's corpus and its BPE (trained on the corpus's training documents, or loaded from
    ``cache_dir`` where it was trained before): what :class:`TextLM` and an export of its model read."""
    corpus = load_corpus(source, dataset, cache_dir)
    return corpus, load_or_train_bpe([d.text for d in corpus.train], vocab_size, cache_dir)


class TextLM:
    """Next-token prediction on a text source (see the module docstring)."""

    name = "lm"

    def __init__(
        self,
        *,
        cache_dir: Path,
        source: str = "shakespeare",
        vocab_size: int = 4096,
        seq_len: int = 256,
        token_budget: int | None = None,
        eval_windows: int = 64,
        dataset: Mapping[str, Any] | None = None,
    ) -> None:
        self.corpus, self.bpe = text_tokenizer(source, vocab_size, dataset, cache_dir)
        train_texts = [d.text for d in self.corpus.train]
        self.vocab_size, self.seq_len = self.bpe.vocab_size, seq_len
        self.train_tokens = torch.from_numpy(self.bpe.stream(train_texts, cache_dir)[:token_budget]).long()
        held_out = torch.from_numpy(self.bpe.stream([d.text for d in self.corpus.held_out], cache_dir)).long()
        for split, tokens in (("training", self.train_tokens), ("held-out", held_out)):
            if len(tokens) <= seq_len + 1:
                raise ValueError(f"lm: the {split} text of {source!r} has {len(tokens)} tokens; need > seq_len + 1")
        self.val_inputs, self.val_targets = self._windows(held_out, eval_windows)
        self.byte_lengths = torch.from_numpy(self.bpe.byte_lengths())

    def _windows(self, tokens: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` evenly spaced non-overlapping windows (fewer if the stream is short).

        Returns:
            inputs, targets: LongTensor ``[count, seq_len]``; EOT targets are ignored.
        """
        T = self.seq_len
        available = (len(tokens) - 1) // T
        starts = np.unique(np.linspace(0, available - 1, min(count, available)).round().astype(np.int64)) * T
        windows = torch.stack([tokens[s : s + T + 1] for s in starts])
        targets = windows[:, 1:].clone()
        targets[targets == self.bpe.eot_id] = IGNORE_INDEX
        return windows[:, :-1], targets

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        """Random windows: inputs ``[B, T]``, targets the next tokens ``[B, T]``."""
        span = torch.arange(self.seq_len + 1)
        step = start_step
        while True:
            rng = np.random.default_rng([seed, step])
            starts = torch.from_numpy(rng.integers(0, len(self.train_tokens) - self.seq_len, size=batch_size))
            windows = self.train_tokens[starts[:, None] + span]
            yield windows[:, :-1], windows[:, 1:]
            step += 1

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, float]:
        """Loss, perplexity and bits per byte on the validation windows."""
        nats = tokens = 0.0
        for logits, targets in predictions(predict, self.val_inputs, self.val_targets, batch_size):
            nll, _, mask = token_scores(logits, targets)
            nats += nll.sum().item()
            tokens += mask.sum().item()
        scored = self.val_targets[self.val_targets != IGNORE_INDEX]
        n_bytes = self.byte_lengths[scored].sum().item()
        loss = nats / tokens
        return {"val_loss": loss, "val_perplexity": math.exp(loss), "val_bits_per_byte": nats / (math.log(2) * n_bytes)}
