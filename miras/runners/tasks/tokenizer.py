"""A byte-level BPE trained locally with ``tokenizers``, cached on disk, and cached token streams.

The tokenizer file is keyed by the hash of the training texts, the vocabulary size and
:data:`TOKENIZER_VERSION`; a token stream by the tokenizer's key and the hash of its texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .cache import atomic_write, content_key, texts_digest

EOT = "<|endoftext|>"
"""The only special token: appended after every document of a stream."""
TOKENIZER_VERSION = 1


def train_bpe(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """Train a GPT-2-style byte-level BPE (256 byte tokens, merges, then :data:`EOT`)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


@dataclass(frozen=True)
class ByteBPE:
    """A trained tokenizer and its cache key."""

    tokenizer: Tokenizer
    key: str

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def eot_id(self) -> int:
        return self.tokenizer.token_to_id(EOT)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def byte_lengths(self) -> np.ndarray:
        """UTF-8 bytes of each token id, int64 ``[vocab_size]`` (0 for :data:`EOT`).

        A byte-level token spells one byte per character, so its length is its byte count.
        """
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        for token, index in self.tokenizer.get_vocab().items():
            lengths[index] = 0 if token == EOT else len(token)
        return lengths

    def stream(self, texts: Sequence[str], cache_dir: Path) -> np.ndarray:
        """The concatenated token ids of ``texts``, each followed by :data:`EOT`; int32 ``[N]``,
        cached under ``cache_dir/tokens``."""
        key = content_key({"tokenizer": self.key, "texts": texts_digest(texts)})
        path = Path(cache_dir) / "tokens" / f"{key}.npy"
        if path.exists():
            return np.load(path)
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.concatenate([np.array([*e.ids, self.eot_id], dtype=np.int32) for e in encodings])

        def save(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.save(f, ids)

        atomic_write(path, save)
        return ids


def bpe_path(texts: Sequence[str], vocab_size: int, cache_dir: Path) -> Path:
    """Where the tokenizer of ``texts`` at ``vocab_size`` is cached."""
    digest = texts_digest(texts)
    key = content_key({"kind": "byte-bpe", "version": TOKENIZER_VERSION, "texts": digest, "vocab_size": vocab_size})
    return Path(cache_dir) / "bpe" / f"bpe-{vocab_size}-{key}.json"


def load_or_train_bpe(texts: Sequence[str], vocab_size: int, cache_dir: Path) -> ByteBPE:
    """The cached tokenizer of ``texts`` (trained and saved on a miss)."""
    path = bpe_path(texts, vocab_size, cache_dir)
    if path.exists():
        return ByteBPE(Tokenizer.from_file(str(path)), path.stem)
    tokenizer = train_bpe(texts, vocab_size)
    atomic_write(path, lambda tmp: tokenizer.save(str(tmp)))
    return ByteBPE(tokenizer, path.stem)
