"""Sweeps: a sweep config -> trials -> Ray Tune (+ Optuna TPE per cell) -> MLflow; resume; cluster mode.

``miras sweep CONFIG.yaml`` (:mod:`miras.search.command`) is the entry point; docs/sweeps.md
describes the usage, the MLflow layout and the resume semantics.
"""
