"""The outer training loop: AdamW, warmup + cosine, clipping, evaluation, checkpoints, statuses.

A trial never crashes the caller on a NaN/inf loss (status ``diverged``) or a CUDA OOM (status
``oom``); a checkpoint written every ``checkpoint_every`` steps makes an interrupted trial
continue exactly where it stopped (same losses as an uninterrupted run).
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.schema import TrainingConfig
from .health import HealthMonitor
from .tasks.base import Task

CHECKPOINT = "checkpoint.pt"
PROGRESS_LINES = 20
"""Progress lines a run prints when stderr is not a terminal (``progress=None``)."""
EvalCallback = Callable[[int, dict[str, float]], None]


class BadDataError(ValueError):
    """A training batch that cannot be learned from (ids out of range, no targets)."""


@dataclass
class TrainResult:
    """Outcome of one training run."""

    status: str
    """``finished``, ``diverged``, ``oom`` or ``failed``."""
    reason: str | None = None
    steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    """One entry per evaluation: ``step`` and the task's metrics."""
    losses: list[float] = field(default_factory=list)
    """Training loss of every step."""
    tokens_per_second: float = 0.0
    peak_memory_mb: float = 0.0
    wall_seconds: float = 0.0

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def schedule(step: int, cfg: TrainingConfig) -> float:
    """Learning-rate multiplier: linear warmup to 1, cosine decay to 0.1 at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(cfg.steps - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    """AdamW at ``cfg.lr``; weight decay on matrices only (not norms, biases, gate constants)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def check_batch(inputs: Tensor, targets: Tensor, vocab_size: int) -> None:
    """Raise :class:`BadDataError` if the batch has ids outside the vocabulary or no targets."""
    if inputs.numel() and (inputs.min() < 0 or inputs.max() >= vocab_size):
        raise BadDataError(f"input ids must be in [0, {vocab_size}); got [{inputs.min()}, {inputs.max()}]")
    valid = targets[targets != -100]
    if valid.numel() == 0:
        raise BadDataError("a training batch has no targets (every target is -100)")
    if valid.min() < 0 or valid.max() >= vocab_size:
        raise BadDataError(f"target ids must be in [0, {vocab_size}) or -100; got [{valid.min()}, {valid.max()}]")


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trainer:
    """Trains ``model`` on ``task``; ``run()`` returns a :class:`TrainResult` and never raises for
    divergence or OOM."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        cfg: TrainingConfig,
        *,
        seed: int,
        checkpoint_dir: Path | None = None,
        on_eval: EvalCallback | None = None,
        progress: bool | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model, self.task, self.cfg, self.seed = model, task, cfg, seed
        self.device = torch.device(device)
        self.model.to(self.device)
        self.optimizer = make_optimizer(model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: schedule(s, cfg))
        self.checkpoint_dir, self.on_eval = checkpoint_dir, on_eval
        self.progress = progress
        """True: a progress bar; False: silent; None: a bar on a terminal, else a line every
        :data:`PROGRESS_LINES`-th of the run on stderr."""
        self.result = TrainResult(status="running")
        self.step = 0
        self.health = HealthMonitor()
        self._last_inputs: Tensor | None = None

    # -- checkpoints ---------------------------------------------------------------------

    def _checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT

    def save(self) -> None:
        """Write the checkpoint atomically (a crash mid-write leaves the previous one)."""
        path = self._checkpoint_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "history": self.result.history,
            "losses": self.result.losses,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def restore(self) -> bool:
        """Load the checkpoint if there is one; returns whether it did."""
        path = self._checkpoint_path()
        if path is None or not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        self.step = state["step"]
        self.result.history, self.result.losses = state["history"], state["losses"]
        return True

    # -- loop ----------------------------------------------------------------------------

    def _autocast(self) -> Any:
        enabled = self.cfg.precision == "bf16" and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def evaluate(self) -> dict[str, float]:
        self.model.eval()

        def predict(inputs: Tensor) -> Tensor:
            with torch.no_grad(), self._autocast():
                return self.model(inputs.to(self.device)).float()

        metrics = self.task.evaluate(predict, self.cfg.batch_size)
        if self._last_inputs is not None:
            with self._autocast():
                metrics |= self.health.metrics(self.model, self._last_inputs)
        self.model.train()
        entry = {"step": float(self.step), **metrics}
        self.result.history.append(entry)
        if self.on_eval is not None:
            self.on_eval(self.step, metrics)
        return metrics

    def _train_step(self, inputs: Tensor, targets: Tensor) -> float:
        check_batch(inputs, targets, self.task.vocab_size)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        with self._autocast():
            logits = self.model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._last_inputs = inputs
        norm = self.health.after_backward(self.model)
        if not math.isfinite(norm):
            raise FloatingPointError(f"gradient norm is {norm} at step {self.step}")
        if self.cfg.grad_clip is not None:
            nn.utils.clip_grads_with_norm_(self.model.parameters(), self.cfg.grad_clip, torch.tensor(norm))
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def run(self) -> TrainResult:
        """Train to ``cfg.steps`` (resuming from a checkpoint if present) and evaluate."""
        started = time.perf_counter()
        self.restore()
        self.model.train()
        cfg = self.cfg
        batches = self.task.train_batches(cfg.batch_size, self.seed, start_step=self.step)
        bar = self._bar()
        tokens, train_seconds = 0, 0.0
        try:
            while self.step < cfg.steps:
                inputs, targets = next(batches)
                tick = time.perf_counter()
                loss = self._train_step(inputs, targets)
                train_seconds += time.perf_counter() - tick
                tokens += inputs.numel()
                self.result.losses.append(loss)
                self.step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}")
                elif self.progress is None and self.step % max(1, cfg.steps // PROGRESS_LINES) == 0:
                    rate = tokens / train_seconds if train_seconds else 0.0
                    print(f"step {self.step}/{cfg.steps}: loss {loss:.4f}, {rate:,.0f} tokens/s", file=sys.stderr)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self.evaluate()
                if cfg.checkpoint_every and (self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps):
                    self.save()
            self.result.status = "finished"
        except FloatingPointError as error:
            self.result.status, self.result.reason = "diverged", str(error)
        except torch.OutOfMemoryError as error:
            self.result.status, self.result.reason = "oom", str(error).splitlines()[0]
        finally:
            if bar is not None:
                bar.close()
        self.result.steps = self.step
        self.result.tokens_per_second = tokens / train_seconds if train_seconds else 0.0
        self.result.peak_memory_mb = peak_memory_mb(self.device)
        self.result.wall_seconds = time.perf_counter() - started
        return self.result

    def _bar(self) -> Any:
        if not (self.progress or (self.progress is None and sys.stderr.isatty())):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.cfg.steps, initial=self.step, desc="train", unit="step", leave=False)
