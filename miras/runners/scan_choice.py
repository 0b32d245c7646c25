"""Which scan a trial's memories run: ``model.impl``, or with ``auto`` compile when it pays.

``torch.compile`` of the chunk step shortens the MLP memories' training step on CPU
(configs/results_lm.yaml's sizes, 2 threads, docs/benchmarks.md: titans 648 -> 570 ms, moneta
759 -> 509, yaad 568 -> 525, memora 834 -> 674) but costs 10-25 s per new shape the first time
(a trial compiles its training shape and its evaluation shapes; inductor caches the graphs on
disk, so later trials of the same shapes start in seconds). Saving 40-250 ms a step against up to
~75 s of compile pays past ~300-2000 steps, so a trial with ``model.impl: auto`` compiles when

- it runs on the CPU (CUDA has the Triton kernels; compile is untimed there),
- some memory layer would run ``chunked`` (the ``delta`` scan of the delta-rule and
  linear-attention families needs no compile),
- it trains at least :data:`COMPILE_MIN_STEPS` steps, and
- a C++ compiler is on the PATH (inductor needs one on the CPU).

Any other ``model.impl`` is used as given, after checking on a probe that it applies to every
memory layer (``ValueError`` with the reason otherwise). The choice and its reason go to the trial's result
(``scan_impl``, ``scan_reason``) and to its MLflow run as tags.
"""

from __future__ import annotations

import shutil

import torch

from ..models import LanguageModel
from ..models.mixer import MirasMixer
from ..ops import select_impl, why_not

COMPILE_MIN_STEPS = 1000
COMPILERS = ("c++", "g++", "clang++")


def _probe(
    mixer: MirasMixer, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The mixer's scan inputs ``q, k, v`` and gates for a 2-token input of zeros, moved to ``device``
    (where the trial will run them)."""
    weight = mixer.out_proj.weight
    x = weight.new_zeros(1, 2, weight.shape[1])
    with torch.no_grad():
        q, k, v = (h.to(device) for h in mixer._qkv(x))
        gates = {name: gate(x).to(device, q.dtype) for name, gate in mixer.gates.items()}
    return q, k, v, gates


def _auto_impls(mixers: list[MirasMixer]) -> set[str]:
    """What ``impl="auto"`` picks for each mixer on the CPU (from a 2-token probe of its inputs)."""
    picked = set()
    for mixer in mixers:
        q, k, v, gates = _probe(mixer, torch.device("cpu"))
        picked.add(select_impl(q, k, v, mixer.components, gates)[0])
    return picked


def choose_scan_impl(model: LanguageModel, impl: str, steps: int, device: torch.device) -> tuple[str, str]:
    """The implementation ``model``'s memories run for a trial of ``steps`` on ``device`` with
    ``model.impl = impl``, and why (one line)."""
    mixers = [m for m in model.modules() if isinstance(m, MirasMixer)]
    if not mixers:
        return "none", "no memory layer"
    if impl != "auto":
        for index, mixer in enumerate(mixers):
            q, k, v, gates = _probe(mixer, device)
            reason = why_not(impl, q, k, v, mixer.components, gates)
            if reason is not None:
                raise ValueError(f"model.impl {impl!r} does not apply to memory layer {index}: {reason}")
        return impl, "model.impl"
    if device.type != "cpu":
        return "auto", f"on {device.type}: auto picks per layer (compile is not chosen off the CPU)"
    picked = _auto_impls(mixers)
    if "chunked" not in picked:
        return "auto", f"auto runs {', '.join(sorted(picked))}: nothing to compile"
    if steps < COMPILE_MIN_STEPS:
        return "auto", f"{steps} steps < {COMPILE_MIN_STEPS}: compiling would not pay"
    if not any(shutil.which(name) for name in COMPILERS):
        return "auto", "no C++ compiler on the PATH for torch.compile"
    return "compiled", f"chunked scan, {steps} steps >= {COMPILE_MIN_STEPS} on the CPU: compiled pays"


def apply_scan_impl(model: LanguageModel, impl: str) -> None:
    """Make every memory layer of ``model`` run ``impl`` (``none``: nothing to set)."""
    for module in model.modules():
        if isinstance(module, MirasMixer):
            module.impl = impl


__all__ = ["COMPILE_MIN_STEPS", "apply_scan_impl", "choose_scan_impl"]
