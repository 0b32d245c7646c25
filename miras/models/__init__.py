"""Models: the Miras mixer, attention baselines, blocks and the causal language model."""

from ..space.architecture import Architecture, architecture
from .attention import Attention
from .lm import LanguageModel
from .mixer import MirasMixer

__all__ = ["Architecture", "Attention", "LanguageModel", "MirasMixer", "architecture"]
