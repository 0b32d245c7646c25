"""Trials: tasks and data, the trainer, and one trial end to end (no Ray here)."""
