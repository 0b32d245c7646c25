"""A trial's byte-level BPE as a ``transformers`` fast tokenizer."""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerFast

from ..runners.tasks.tokenizer import EOT, ByteBPE


def save_tokenizer(bpe: ByteBPE, folder: Path | str) -> Path:
    """Write ``bpe`` into ``folder`` (``tokenizer.json``, ``tokenizer_config.json``) so that
    ``AutoTokenizer.from_pretrained(folder)`` encodes and decodes exactly as ``bpe`` does, with
    ``<|endoftext|>`` (the token after every training document) as its end-of-sequence, beginning
    and padding token (``decode`` keeps it unless ``skip_special_tokens=True``, which is what
    ``ByteBPE.decode`` does). Returns ``folder``."""
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe.tokenizer, eos_token=EOT, bos_token=EOT, pad_token=EOT)
    folder = Path(folder)
    fast.save_pretrained(str(folder))
    return folder
