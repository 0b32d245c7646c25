"""Hugging Face formats of what a trial made: the model classes (registered with ``AutoConfig`` and
``AutoModelForCausalLM`` as model type ``miras`` by this import), the tokenizer and the export of a
trial. ``transformers`` is the optional extra ``miras[hf]``: only this package imports it.

    import miras.hf
    model = transformers.AutoModelForCausalLM.from_pretrained("exported/")
"""

from __future__ import annotations

from ..extras import HF_EXTRA, missing_extras

if missing_extras("transformers"):
    raise ImportError(HF_EXTRA)

from .export import Origin, export_run, export_trial, read_origin
from .modeling import MirasCache, MirasConfig, MirasForCausalLM, config_of, language_model, to_hf
from .tokenizer import save_tokenizer

__all__ = [
    "MirasCache",
    "MirasConfig",
    "MirasForCausalLM",
    "Origin",
    "config_of",
    "export_run",
    "export_trial",
    "language_model",
    "read_origin",
    "save_tokenizer",
    "to_hf",
]
