"""Where a training step's time goes: every combination of a sweep config, timed whole and by part.

A *step* is what the trainer does per batch: forward, next-token cross-entropy, backward,
gradient clipping and the AdamW update, at the config's sizes (``task`` vocabulary and sequence
length, ``training.batch_size``, ``model`` at its first width) on random token ids. The parts
are timed in isolation, each its forward + backward on inputs captured from one forward of the
model (detached, so a part's time is its own), summed over the layers:

- ``embed+head``: the embedding, the final norm, the tied LM head and the loss;
- ``qkv``: the mixer's q/k/v projections, short convolutions and q/k/v norms;
- ``gates``: the mixer's gate projections and activations;
- ``scan``: :func:`miras.ops.miras_scan` at the model's ``model.impl``;
- ``output``: the mixer's output norm, output gate and projection;
- ``attention``: an attention layer (projections, SDPA, output) whole;
- ``mlp``: the SwiGLU blocks with their norms;
- ``optimizer``: clipping and ``AdamW.step``;
- ``other``: the step minus the parts (block norms, residual adds, autograd bookkeeping).

Before its numbers are kept, each combination's model is checked: loss and every parameter's
gradient at ``model.impl`` against the same weights with the token-loop reference scan, in fp64
on a small batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import SweepConfig
from ..models import LanguageModel
from ..models.attention import Attention
from ..models.lm import Block
from ..models.mixer import MirasMixer
from ..ops import miras_scan
from ..runners.trainer import make_optimizer
from ..runners.trial import build_model
from ..search.plan import Plan, task_shape
from .peers import rel_rms
from .timing import median_seconds

PARTS = ("embed+head", "qkv", "gates", "scan", "output", "attention", "mlp", "optimizer", "other")
CHECK_TOLERANCE = 1e-8
"""Largest relative RMS error (fp64) of the loss and of every gradient against the reference."""


@dataclass
class StepTiming:
    """One combination's step: total and per-part milliseconds, and its check."""

    combination: str
    params: int
    tokens: int
    """Tokens per step (batch x sequence length)."""
    check: str
    ok: bool
    step_ms: float | None = None
    parts_ms: dict[str, float] = field(default_factory=dict)
    repeats: int = 0

    @property
    def tokens_per_s(self) -> float | None:
        return None if self.step_ms is None else self.tokens / (self.step_ms / 1000)


def models_of(config: SweepConfig, combinations: list[str] | None = None) -> dict[str, Callable[[], LanguageModel]]:
    """Per combination label (all, or those named), a builder of its model at the first width and
    seed, with the sweep's default searched values."""
    known = [label for label, _ in config.combinations()]
    unknown = [name for name in combinations or () if name not in known]
    if unknown:
        raise KeyError(f"no combination {', '.join(unknown)} in {config.name}; known: {', '.join(known)}")
    plan = Plan(config)
    vocab, _ = task_shape(config.task)
    builders: dict[str, Callable[[], LanguageModel]] = {}
    for cell in plan.cells:
        if cell.combination in builders or (combinations and cell.combination not in combinations):
            continue
        trial = plan.settings(cell, config.training.lr, {}).trial_config(config.task)
        builders[cell.combination] = lambda trial=trial: build_model(trial, vocab)
    return builders


def next_token_loss(model: LanguageModel, tokens: Tensor) -> Tensor:
    """``tokens`` ``[B, T + 1]`` -> the mean cross-entropy of predicting ``tokens[:, 1:]``."""
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())


def check_against_reference(model: LanguageModel, vocab: int, length: int) -> tuple[bool, str]:
    """Loss and every parameter gradient of ``model`` (its own ``model.impl``) against a copy whose
    scans run the token-loop reference, in fp64 on 2 sequences of ``min(length, 32)`` tokens."""
    mixers = [m for m in model.modules() if isinstance(m, MirasMixer)]
    if not mixers:
        return True, "no memory layer (attention only): nothing to check"
    tokens = torch.randint(0, vocab, (2, min(length, 32) + 1), generator=torch.Generator().manual_seed(0))
    ours, reference = copy.deepcopy(model).double(), copy.deepcopy(model).double()
    for mixer in reference.modules():
        if isinstance(mixer, MirasMixer):
            mixer.impl = "reference"
    losses, grads = [], []
    for copy_ in (ours, reference):
        loss = next_token_loss(copy_, tokens)
        loss.backward()
        losses.append(loss.detach())
        grads.append({name: p.grad for name, p in copy_.named_parameters() if p.grad is not None})
    errors = {"loss": rel_rms(losses[0], losses[1])}
    if grads[0].keys() != grads[1].keys():
        return False, f"gradients differ in which parameters they reach: {sorted(grads[0].keys() ^ grads[1].keys())}"
    errors |= {name: rel_rms(grads[0][name], grads[1][name]) for name in grads[1]}
    worst = max(errors, key=lambda name: errors[name])
    ok = all(math.isfinite(e) and e <= CHECK_TOLERANCE for e in errors.values())
    verdict = "matches" if ok else "DOES NOT match"
    return ok, f"{verdict} the reference (max rel-RMS {errors[worst]:.1e} at {worst}, <= {CHECK_TOLERANCE:g})"


def _backward_of(outputs: tuple[Tensor, ...]) -> None:
    """Back-propagate a fixed random cotangent through ``outputs`` (what a loss would send)."""
    gen = torch.Generator(device=outputs[0].device).manual_seed(0)
    cotangents = [torch.randn(o.shape, generator=gen, device=o.device, dtype=o.dtype) for o in outputs]
    torch.autograd.backward(list(outputs), cotangents)


def _leaf(x: Tensor) -> Tensor:
    return x.detach().requires_grad_()


class _Inputs:
    """What each layer received in one forward of the model (captured by forward pre-hooks)."""

    def __init__(self, model: LanguageModel, tokens: Tensor) -> None:
        self.seen: dict[nn.Module, Tensor] = {}
        hooks = [
            module.register_forward_pre_hook(self._record)
            for module in model.modules()
            if isinstance(module, MirasMixer | Attention | Block) or module is model.norm
        ]
        try:
            with torch.no_grad():
                model(tokens[:, :-1])
        finally:
            for hook in hooks:
                hook.remove()

    def _record(self, module: nn.Module, args: tuple[Tensor, ...]) -> None:
        self.seen[module] = args[0].detach()


def part_steps(model: LanguageModel, tokens: Tensor) -> dict[str, list[Callable[[], None]]]:
    """Per part (:data:`PARTS` but ``optimizer`` and ``other``), one forward + backward callable per layer."""
    seen = _Inputs(model, tokens).seen
    steps: dict[str, list[Callable[[], None]]] = {name: [] for name in PARTS[:-2]}

    def head() -> None:
        x = _leaf(seen[model.norm])
        logits = model.norm(x) @ model.embed.weight.t()
        loss = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
        (loss + model._embed(tokens[:, :-1]).sum()).backward()

    steps["embed+head"].append(head)
    for block in model.blocks:
        assert isinstance(block, Block)
        mixer = block.mixer
        if isinstance(mixer, MirasMixer):
            steps_of_mixer(mixer, seen[mixer], steps)
        else:
            x = seen[mixer]
            steps["attention"].append(lambda mixer=mixer, x=x: _backward_of((mixer(_leaf(x)),)))
        if block.mlp is not None:
            with torch.no_grad():
                residual = seen[block] + block.mixer(block.mixer_norm(seen[block]))
            steps["mlp"].append(lambda block=block, r=residual: _backward_of((block._mlp(_leaf(r)),)))
    return steps


def steps_of_mixer(mixer: MirasMixer, x: Tensor, steps: dict[str, list[Callable[[], None]]]) -> None:
    """Append the ``qkv``, ``gates``, ``scan`` and ``output`` parts of ``mixer`` on its input ``x``."""
    with torch.no_grad():
        q, k, v = mixer._qkv(x)
        gates = {name: gate(x).to(q.dtype) for name, gate in mixer.gates.items()}
        initial = {name: w.to(q.dtype) for name, w in mixer._initial_state(x.shape[0]).items()}
        o, _ = miras_scan(q, k, v, mixer.components, gates, initial_state=initial, impl=mixer.impl)

    def scan() -> None:
        leaves = [_leaf(t) for t in (q, k, v)]
        gate_leaves = {name: _leaf(g) for name, g in gates.items()}
        state = {name: _leaf(w) for name, w in initial.items()}
        out, _ = miras_scan(*leaves, mixer.components, gate_leaves, initial_state=state, impl=mixer.impl)
        _backward_of((out,))

    def gate_projections() -> None:
        outputs = tuple(g for g in (gate(_leaf(x)) for gate in mixer.gates.values()) if g.requires_grad)
        if outputs:  # a gate fixed to one has nothing to differentiate
            _backward_of(outputs)

    steps["qkv"].append(lambda: _backward_of(mixer._qkv(_leaf(x))))
    if gates:
        steps["gates"].append(gate_projections)
    steps["scan"].append(scan)
    steps["output"].append(lambda: _backward_of((mixer._output(_leaf(o), _leaf(x)),)))


def time_step(
    config: SweepConfig,
    combination: str,
    build: Callable[[], LanguageModel],
    *,
    batch: int | None = None,
    device: str = "cpu",
    repeats: int = 5,
    max_seconds: float = 60.0,
) -> StepTiming:
    """Check, then time, one combination's training step and its parts (median of up to ``repeats``
    runs within ``max_seconds`` each)."""
    vocab, length = task_shape(config.task)
    batch = batch or config.training.batch_size
    torch.manual_seed(0)
    model = build()
    ok, check = check_against_reference(model, vocab, length)
    timing = StepTiming(combination, model.num_params(), batch * length, check, ok)
    if not ok:
        return timing
    model = model.to(device)
    tokens = torch.randint(0, vocab, (batch, length + 1), generator=torch.Generator().manual_seed(1)).to(device)
    optimizer = make_optimizer(model, config.training)
    clip = config.training.grad_clip

    def clip_and_update() -> None:
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()

    def whole_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        next_token_loss(model, tokens).backward()
        clip_and_update()

    whole_step()  # warm-up; also leaves gradients for the optimizer's part
    measured = median_seconds(whole_step, device, repeats, max_seconds)
    if measured is None:
        timing.check += f"; the step did not finish within {max_seconds:g} s"
        return timing
    seconds, timing.repeats = measured
    timing.step_ms = 1000 * seconds
    parts = {name: calls for name, calls in part_steps(model, tokens).items() if calls}
    parts["optimizer"] = [clip_and_update]
    for name, calls in parts.items():
        total = 0.0
        for call in calls:
            call()  # warm-up
            measured = median_seconds(call, device, repeats, max_seconds)
            total += math.inf if measured is None else measured[0]
        timing.parts_ms[name] = 1000 * total
    timing.parts_ms["other"] = timing.step_ms - sum(timing.parts_ms.values())
    model.zero_grad(set_to_none=True)
    return timing


HEADER = (
    "| combination | params | step ms | tokens/s | "
    + " | ".join(PARTS)
    + " | runs |\n|---|---:|---:|---:|"
    + "---:|" * len(PARTS)
    + "---:|"
)


def row(timing: StepTiming) -> str:
    """One Markdown row: the step's ms and tokens/s, then each part's ms and share of the step."""
    head = f"| {timing.combination} | {timing.params:,} |"
    if timing.step_ms is None:
        return f"{head} not timed: {timing.check} |" + " |" * (len(PARTS) + 2)
    cells = []
    for name in PARTS:
        ms = timing.parts_ms.get(name)
        cells.append("" if ms is None else f"{ms:,.1f} ({100 * ms / timing.step_ms:.0f} %)")
    return f"{head} {timing.step_ms:,.1f} | {timing.tokens_per_s:,.0f} | {' | '.join(cells)} | {timing.repeats} |"


__all__ = ["PARTS", "StepTiming", "check_against_reference", "models_of", "part_steps", "row", "time_step"]
