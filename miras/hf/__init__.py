"""Hugging Face formats of what a trial made. ``transformers`` is the optional extra ``miras[hf]``,
imported only when one of these functions runs."""

from .tokenizer import save_tokenizer

__all__ = ["save_tokenizer"]
