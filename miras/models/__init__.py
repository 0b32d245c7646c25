"""Models: the Miras mixer, attention baselines, blocks and the causal language model."""

from .attention import Attention
from .lm import BASELINES, Architecture, LanguageModel, architecture
from .mixer import MirasMixer

__all__ = ["BASELINES", "Architecture", "Attention", "LanguageModel", "MirasMixer", "architecture"]
