"""Downstream evaluation of exported models with EleutherAI's lm-evaluation-harness (the optional
extra ``miras[eval]``), including a local task that needs no download: :mod:`miras.evaluation.cloze`."""
