"""Shared plumbing of every implementation: argument checks, gate layout, mini-batches, state."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..space import Components, MirasSpec

State = dict[str, Tensor]
"""Memory state: the dual accumulator of each weight, ``name -> [B, H, out, in]``, and for
momentum algorithms the momentum of each weight, ``"momentum.<name>" -> [B, H, out, in]``."""

MOMENTUM_PREFIX = "momentum."


@dataclass(frozen=True)
class ScanProblem:
    """Checked arguments of one scan, in the internal layout ``[B, H, T, D]``."""

    components: Components
    q: Tensor
    k: Tensor
    v: Tensor
    gates: dict[str, Tensor]
    """name -> ``[B, H, T, 1]`` (per head) or ``[B, H, T, D]`` (channel-wise)."""
    shapes: dict[str, tuple[int, int]]

    @property
    def length(self) -> int:
        return self.k.shape[2]


def resolve(spec: MirasSpec | Components) -> Components:
    return spec if isinstance(spec, Components) else spec.resolve()


def prepare(q: Tensor, k: Tensor, v: Tensor, spec: MirasSpec | Components, gates: dict[str, Tensor]) -> ScanProblem:
    """Check shapes and gates (clear errors) and move everything to ``[B, H, T, D]``."""
    components = resolve(spec)
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must be [B, T, H, D]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape; got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v must be [B, T, H, D_v] with k's B, T, H; got {tuple(v.shape)} and {tuple(k.shape)}")
    batch, length, heads, d_k = k.shape
    d_v = v.shape[-1]
    components.memory.check_dims(d_k, d_v)
    shapes = components.memory.shapes(d_k, d_v)
    specs = components.gate_specs()
    required = [spec.name for spec in specs]
    missing = [name for name in required if name not in gates]
    extra = [name for name in gates if name not in required]
    if missing or extra:
        raise ValueError(f"this spec needs exactly the gates {required}; missing {missing}, unexpected {extra}")
    in_dims = {i for _, i in shapes.values()}
    prepared = {}
    for spec in specs:
        name, gate = spec.name, gates[spec.name]
        if gate.shape[:3] != (batch, length, heads) or gate.dim() not in (3, 4):
            raise ValueError(
                f"gate {name!r} must be [B, T, H] or [B, T, H, D] with B={batch}, T={length}, H={heads}; "
                f"got {tuple(gate.shape)}"
            )
        if gate.dim() == 4:
            width = gate.shape[-1]
            if spec.acts_on == "values" and width != d_v:
                raise ValueError(f"channel-wise gate {name!r} acts on values: width must be D_v={d_v}, got {width}")
            if spec.acts_on == "inputs" and in_dims != {width}:
                raise ValueError(
                    f"channel-wise gate {name!r} acts on the input dimension of every memory weight "
                    f"(inputs {sorted(in_dims)}); got width {width}: use a per-head gate [B, T, H]"
                )
        gate = gate if gate.dim() == 4 else gate.unsqueeze(-1)
        prepared[name] = gate.transpose(1, 2)
    return ScanProblem(components, q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), prepared, shapes)


def initial(problem: ScanProblem, initial_state: State | None) -> tuple[State, State]:
    """The dual accumulators and momenta at t = 0 (zeros where no initial state is given)."""
    batch, heads = problem.k.shape[:2]
    like = problem.k
    momentum = problem.components.algorithm.momentum
    names = list(problem.shapes) + [MOMENTUM_PREFIX + n for n in problem.shapes] * momentum
    if initial_state is not None:
        unknown = sorted(set(initial_state) - set(names))
        if unknown:
            raise ValueError(f"initial_state has unknown entries {unknown}; expected a subset of {names}")
    accumulators, momenta = {}, {}
    for name, (rows, cols) in problem.shapes.items():
        for target, key in ((accumulators, name), (momenta, MOMENTUM_PREFIX + name)):
            if target is momenta and not momentum:
                continue
            given = None if initial_state is None else initial_state.get(key)
            if given is None:
                target[name] = like.new_zeros(batch, heads, rows, cols)
            elif given.shape != (batch, heads, rows, cols):
                raise ValueError(
                    f"initial_state[{key!r}] must be [B, H, out, in] = {(batch, heads, rows, cols)}; "
                    f"got {tuple(given.shape)}"
                )
            else:
                target[name] = given.to(like.dtype)
    return accumulators, momenta


def final(accumulators: State, momenta: State) -> State:
    """Pack the state returned to the caller."""
    return dict(accumulators) | {MOMENTUM_PREFIX + n: m for n, m in momenta.items()}


def minibatches(length: int, batch_size: int, lag_token: bool) -> list[tuple[int, int]]:
    """``[start, end)`` of every mini-batch.

    Chunks of ``batch_size`` tokens from t = 0 (the last may be shorter); with ``lag_token``
    the first token of every chunk is a mini-batch of its own (Memora).
    """
    out = []
    for start in range(0, length, batch_size):
        end = min(start + batch_size, length)
        if lag_token and end - start > 1:
            out += [(start, start + 1), (start + 1, end)]
        else:
            out.append((start, end))
    return out


def closes_minibatch(t: int, batch_size: int, lag_token: bool) -> bool:
    """Whether token ``t`` (absolute position) is the last of a *full* mini-batch.

    The mirror map is applied after such tokens. A sequence that ends inside a mini-batch does
    not close it, so decoding token by token (which cannot know where the sequence ends) equals
    the full forward.
    """
    position = t % batch_size
    return position == batch_size - 1 or (lag_token and position == 0)


def weight_gate(gate: Tensor) -> Tensor:
    """A decay or momentum gate ``[B, H, ..., 1|D]`` broadcast over a weight ``[B, H, ..., out, in]``."""
    return gate.unsqueeze(-2)


def implicit_lr(lr: Tensor, k: Tensor) -> Tensor:
    """Implicit GD step for a linear memory and the l2 bias: ``eta / (1 + eta ||k||^2)``."""
    return lr / (1 + lr * (k * k).sum(-1, keepdim=True))


__all__ = ["MOMENTUM_PREFIX", "ScanProblem", "State", "closes_minibatch", "final", "initial", "minibatches", "prepare"]
