"""The paper's numbers, as data (transcribed from shared/paper/miras-spec.md §8–§9; do not edit by hand
without the spec beside you). The paper marks hybrids with ``*``: here Moneta-H, Yaad-H and Memora-H (as its
text names them), Samba and Gated DeltaNet-H2."""

from __future__ import annotations

import pandas as pd

LM_COLUMNS = ("wiki_ppl", "lmb_ppl", "lmb_acc", "piqa", "hella", "wino", "arc_e", "arc_c", "siqa", "boolq", "avg8")
"""Wiki ppl↓, LAMBADA ppl↓, then accuracies (%); ``avg8`` is the spec author's mean of the 8 accuracies."""

LM_SIZES: dict[str, tuple[float, float]] = {"340M": (340e6, 15e9), "760M": (760e6, 30e9), "1.3B": (1.3e9, 100e9)}
"""Paper LM scale -> (parameters, training tokens). Data: FineWeb-Edu, context 4096."""

LM_RESULTS: dict[str, dict[str, tuple[float, ...]]] = {
    "340M": {
        "Transformer++": (31.52, 41.08, 30.76, 62.98, 34.76, 50.53, 45.21, 24.05, 36.81, 58.24, 42.92),
        "RetNet": (32.50, 49.73, 28.24, 62.61, 34.15, 50.91, 44.27, 23.62, 36.79, 59.72, 42.54),
        "GLA": (28.51, 43.02, 28.73, 64.05, 35.96, 50.00, 54.19, 24.29, 37.13, 58.39, 44.09),
        "Mamba": (30.83, 40.21, 29.94, 63.79, 35.88, 49.82, 49.24, 24.56, 35.41, 60.07, 43.59),
        "DeltaNet": (28.65, 47.30, 28.43, 63.52, 35.95, 49.63, 52.68, 25.37, 37.96, 58.79, 44.04),
        "TTT": (27.44, 34.19, 30.06, 63.97, 35.71, 50.08, 53.01, 26.11, 37.32, 59.83, 44.51),
        "Gated DeltaNet": (27.01, 30.94, 34.11, 63.08, 38.12, 51.60, 55.28, 26.77, 34.89, 59.54, 45.42),
        "Moneta": (26.19, 29.31, 35.70, 63.99, 39.23, 52.04, 55.96, 27.15, 37.29, 60.22, 46.45),
        "Yaad": (26.61, 29.11, 34.09, 64.93, 39.86, 51.12, 54.75, 28.64, 33.82, 60.29, 45.94),
        "Memora": (27.16, 30.44, 33.68, 65.21, 39.17, 51.23, 53.40, 27.99, 34.1, 59.29, 45.51),
    },
    "760M": {
        "Transformer++": (25.21, 27.64, 35.78, 66.92, 42.19, 51.95, 60.38, 32.46, 39.51, 60.37, 48.69),
        "RetNet": (26.08, 24.45, 34.51, 67.19, 41.63, 52.09, 63.17, 32.78, 38.36, 57.92, 48.46),
        "Mamba2": (22.94, 28.37, 33.54, 67.90, 42.71, 49.77, 63.48, 31.09, 40.06, 58.15, 48.34),
        "DeltaNet": (24.37, 24.60, 37.06, 66.93, 41.98, 50.65, 64.87, 31.39, 39.88, 59.02, 48.97),
        "TTT": (24.17, 23.51, 34.74, 67.25, 43.92, 50.99, 64.53, 33.81, 40.16, 59.58, 49.37),
        "Gated DeltaNet": (21.18, 22.09, 35.54, 68.01, 44.95, 50.73, 66.87, 33.09, 39.21, 59.14, 49.69),
        "Samba": (20.63, 22.71, 39.72, 69.19, 47.35, 52.01, 66.92, 33.20, 38.98, 61.24, 51.08),
        "Gated DeltaNet-H2": (19.88, 20.83, 39.18, 68.95, 48.22, 52.57, 67.01, 35.49, 39.39, 61.11, 51.49),
        "Moneta": (21.18, 21.94, 38.02, 69.55, 49.16, 53.01, 67.47, 36.09, 40.53, 63.18, 52.13),
        "Yaad": (20.99, 21.57, 37.85, 69.14, 50.02, 53.93, 67.78, 36.27, 41.01, 63.34, 52.42),
        "Memora": (22.28, 22.31, 38.19, 67.82, 49.30, 53.28, 63.57, 36.15, 40.94, 62.96, 51.53),
        "Moneta-H": (18.72, 20.13, 40.59, 70.84, 50.13, 54.17, 67.64, 36.79, 40.87, 62.43, 52.93),
        "Yaad-H": (18.59, 19.80, 40.22, 69.51, 50.48, 53.69, 68.04, 36.55, 40.28, 61.94, 52.59),
        "Memora-H": (18.24, 20.55, 39.91, 69.06, 49.84, 52.88, 66.90, 36.12, 40.99, 61.75, 52.18),
    },
    "1.3B": {
        "Transformer++": (18.53, 18.32, 42.60, 70.02, 50.23, 53.51, 68.83, 35.10, 40.66, 57.09, 52.26),
        "RetNet": (19.08, 17.27, 40.52, 70.07, 49.16, 54.14, 67.34, 33.78, 40.78, 60.39, 52.02),
        "Mamba2": (16.56, 12.56, 45.66, 71.87, 55.67, 55.24, 72.47, 37.88, 40.20, 60.13, 54.89),
        "DeltaNet": (17.71, 16.88, 42.46, 70.72, 50.93, 53.35, 68.47, 35.66, 40.22, 55.29, 52.14),
        "Gated DeltaNet": (16.42, 12.17, 46.65, 72.25, 55.76, 57.45, 71.21, 38.39, 40.63, 60.24, 55.32),
        "Samba": (16.13, 13.29, 44.94, 70.94, 53.42, 55.56, 68.81, 36.17, 39.96, 62.11, 53.99),
        "Gated DeltaNet-H2": (15.91, 12.55, 48.76, 72.19, 56.88, 57.77, 71.33, 39.07, 41.91, 61.55, 56.18),
        "Moneta": (15.52, 11.47, 47.88, 73.16, 56.14, 59.09, 72.53, 40.32, 41.91, 61.18, 56.53),
        "Yaad": (15.18, 11.89, 47.23, 72.81, 56.46, 59.02, 72.14, 40.05, 40.73, 61.86, 56.29),
        "Memora": (15.90, 12.04, 48.67, 73.10, 55.99, 57.36, 71.55, 37.92, 40.19, 61.34, 55.77),
    },
}
"""Paper §9.1 (tab:lm_results): model -> the :data:`LM_COLUMNS` values, per scale."""

NIAH_CELLS: dict[str, tuple[str, int]] = {
    "PK-2K": ("passkey", 2048),
    "PK-4K": ("passkey", 4096),
    "PK-8K": ("passkey", 8192),
    "N-2K": ("number", 2048),
    "N-4K": ("number", 4096),
    "N-8K": ("number", 8192),
    "W-1K": ("word", 1024),
    "W-2K": ("word", 2048),
    "W-4K": ("word", 4096),
}
"""RULER S-NIAH cells: passkey / number / word needle at a context length (1K read as 1024 tokens)."""

NIAH_RESULTS: dict[str, tuple[float, ...]] = {
    "Mamba2": (98.6, 61.4, 31.0, 98.4, 55.8, 14.2, 62.2, 42.2, 4.2),
    "DeltaNet": (96.8, 98.8, 98.6, 47.2, 15.4, 12.8, 85.2, 46.2, 20.0),
    "Gated DeltaNet": (89.8, 91.4, 90.0, 99.2, 91.8, 26.4, 86.4, 82.6, 24.4),
    "TTT": (98.4, 98.8, 98.0, 60.2, 36.6, 10.2, 85.8, 78.8, 28.0),
    "Moneta": (99.4, 98.8, 98.8, 99.4, 99.4, 92.8, 92.2, 88.2, 70.8),
    "Yaad": (99.2, 98.6, 94.4, 99.8, 98.6, 93.2, 91.8, 89.6, 67.4),
    "Memora": (99.2, 98.8, 92.6, 98.4, 99.2, 93.2, 92.4, 88.2, 70.4),
}
"""Paper §9.2 (tab:haystack), accuracy in %, in :data:`NIAH_CELLS` order; model size not stated."""

YAAD_ABLATION: dict[str, tuple[float, tuple[str, str] | None]] = {
    "Yaad": (53.98, None),
    "− Retention Gate (β = 1)": (50.63, ("retention", "none")),
    "− Input-dependent δ": (52.19, None),
    "ℓ2-loss": (52.86, ("bias", "l2")),
    "ℓ1-loss": (53.04, ("bias", "l1")),
    "linear memory": (51.57, ("memory", "linear")),
}
"""Paper §9.4 (tab:ablation), "Avg. LM" (dataset and size not stated) -> value and the (axis, option) swap
against Yaad that our sweeps express (``None``: no single swap of a registry option expresses it)."""

PRESET_OF_ROW: dict[str, str] = {
    "Transformer++": "transformer",
    "RetNet": "retnet",
    "GLA": "gla",
    "Mamba2": "mamba2",
    "DeltaNet": "deltanet",
    "Gated DeltaNet": "gated_deltanet",
    "Gated DeltaNet-H2": "gated_deltanet_h",
    "Moneta": "moneta",
    "Yaad": "yaad",
    "Memora": "memora",
    "Moneta-H": "moneta_h",
    "Yaad-H": "yaad_h",
    "Memora-H": "memora_h",
}
"""Paper rows -> our preset or baseline. Left out: Mamba (Mamba-1, not our mamba2), TTT (the variant is not
stated), Samba (no Mamba+SWA preset). Gated DeltaNet-H2 is approximated by our gated_deltanet_h."""


def lm_table(size: str) -> pd.DataFrame:
    """The paper's LM results at one scale (``340M``, ``760M`` or ``1.3B``), one row per model."""
    rows = LM_RESULTS[size]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(LM_COLUMNS))
    frame.index.name = "paper_model"
    return frame.reset_index().assign(preset=lambda f: f["paper_model"].map(PRESET_OF_ROW))


def niah_table() -> pd.DataFrame:
    """The paper's S-NIAH results, one row per model, one column per cell."""
    frame = pd.DataFrame.from_dict(NIAH_RESULTS, orient="index", columns=list(NIAH_CELLS))
    frame.index.name = "paper_model"
    return frame.reset_index().assign(preset=lambda f: f["paper_model"].map(PRESET_OF_ROW))
