"""A trial's BPE saved as a ``transformers`` fast tokenizer loads with ``AutoTokenizer`` and tokenizes
exactly as the BPE does (offline: the BPE is trained here)."""

from __future__ import annotations

import pytest

from miras.runners.tasks.tokenizer import EOT, ByteBPE, train_bpe

transformers = pytest.importorskip("transformers")
save_tokenizer = pytest.importorskip("miras.hf").save_tokenizer

TEXTS = ["the king is dead, long live the king. " * 30, "héllo wörld — ünïcode ✓ and tabs\tand\nlines " * 10]
PROBES = ["the king", "héllo ✓ zebra quux 1234", "a" + EOT + "b", "  leading spaces\nand a new line", ""]


@pytest.fixture(scope="module")
def bpe() -> ByteBPE:
    return ByteBPE(train_bpe(TEXTS, 300), "test")


def test_autotokenizer_loads_it_and_tokenizes_exactly_as_the_bpe(bpe, tmp_path):
    folder = save_tokenizer(bpe, tmp_path / "model")
    loaded = transformers.AutoTokenizer.from_pretrained(str(folder))
    for text in PROBES:
        ids = bpe.encode(text)
        assert loaded.encode(text) == ids, text
        assert loaded.decode(ids) == text  # the special token decodes as itself
        assert loaded.decode(ids, skip_special_tokens=True) == bpe.decode(ids)  # as tokenizers' default
    assert loaded.eos_token_id == loaded.pad_token_id == bpe.eot_id
    assert len(loaded) == bpe.vocab_size
    assert loaded.encode("a" + EOT + "b").count(bpe.eot_id) == 1  # the special token stays one id
