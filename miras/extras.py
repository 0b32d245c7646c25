"""The optional extras and what to say when one is missing (torch-free: the CLI reads it)."""

from __future__ import annotations

import importlib.util

EXTRAS = {"transformers": "miras[hf]", "lm_eval": "miras[eval]", "accelerate": "miras[eval]"}
"""Module -> the extra that installs it."""
HF_EXTRA = "the Hugging Face formats need 'transformers': pip install 'miras[hf]'"


def missing_extras(*modules: str) -> list[str]:
    """The extras (``miras[hf]``, ...) that would install the ``modules`` not importable here."""
    return list(dict.fromkeys(EXTRAS[module] for module in modules if importlib.util.find_spec(module) is None))


def install_command(extras: list[str]) -> str:
    """``pip install 'miras[hf]' 'miras[eval]'``."""
    return "pip install " + " ".join(f"'{extra}'" for extra in extras)
