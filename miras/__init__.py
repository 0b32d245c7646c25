"""miras: explore the Miras design space of sequence models (docs/, README.md).

``miras.sweep(config, ...)`` runs a sweep from Python (:func:`miras.search.api.sweep`); the
subpackages are ``space`` (the four axes, presets), ``ops`` (the memory scans), ``models``,
``runners``, ``search``, ``analysis`` and ``reports``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def sweep(config: Any, *args: Any, **options: Any) -> pd.DataFrame:
    """Run (or resume) a sweep and return its trials frame: :func:`miras.search.api.sweep` (imported
    on first use, so ``import miras`` stays light)."""
    from .search.api import sweep as run

    return run(config, *args, **options)


__all__ = ["sweep"]
