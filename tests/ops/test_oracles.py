"""The reference scan (and the delta scan) against closed forms and published implementations.

Oracles: causal linear attention written as a masked matmul; fla's pure-torch ``naive``
recurrences (delta rule, gated delta rule, gated delta product, Titans-linear); titans-pytorch's
``NeuralMemory``. fla and titans-pytorch are imported lazily and skipped when absent. How each
oracle's conventions were aligned with ours is stated in each test and in docs/oracles.md.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from scan_checks import assert_close

from miras.bench.peers import rel_rms
from miras.ops import delta_scan, reference_scan
from miras.space import PRESETS, AttentionalBias, Components, MirasSpec
from miras.space.registry import REGISTRIES, NoParams

pytestmark = [
    pytest.mark.oracles,
    pytest.mark.filterwarnings("ignore:Triton is not supported:UserWarning"),
]

FLA_TOLERANCE = 1e-5
"""fla's naive functions compute in fp32 whatever the input; ours run in fp64."""
F64 = torch.float64


def randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def rand(*shape: int, seed: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def fla_inputs(batch=2, length=45, heads=3, d_k=16, d_v=8):
    """``q, k, v`` ``[B, T, H, D]`` (unit-norm keys), lr and decay ``[B, T, H]``, ``W_0`` ``[B, H, D_v, D_k]``."""
    q, v = randn(batch, length, heads, d_k, seed=1), randn(batch, length, heads, d_v, seed=2)
    k = F.normalize(randn(batch, length, heads, d_k, seed=3), dim=-1)
    lr, decay = rand(batch, length, heads, seed=4), rand(batch, length, heads, seed=5, low=0.5)
    w0 = randn(batch, heads, d_v, d_k, seed=6, scale=0.5)
    return q, k, v, lr, decay, w0


# ---------------------------------------------------------------------------------------------
# closed forms


@pytest.mark.parametrize("preset", ["linear_attention", "mamba2"])
def test_dot_product_bias_is_causal_linear_attention(preset):
    """dot + (none | l2 decay) + linear + gd: ``o_t = G_t0 W_0 q_t + sum_{i<=t} G_ti lr_i (q_t . k_i) v_i``.

    ``G_ti = prod_{i<l<=t} alpha_l`` (1 without decay), computed here as a masked matmul.
    """
    spec = PRESETS[preset].spec
    q, k, v, lr, decay, w0 = fla_inputs()
    gates = {"lr": lr} | ({"decay": decay} if "decay" in spec.resolve().required_gates() else {})
    out, final = reference_scan(q, k, v, spec, gates, initial_state={"W": w0}, output_final_state=True)

    alpha = gates.get("decay", torch.ones_like(lr)).transpose(1, 2)  # [B, H, T]
    log_cum = alpha.log().cumsum(-1)
    length = alpha.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    between = (log_cum.unsqueeze(-1) - log_cum.unsqueeze(-2)).masked_fill(~causal, float("-inf")).exp()
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
    scores = (qt @ kt.transpose(-1, -2)) * between * lr.transpose(1, 2).unsqueeze(-2)
    expected = scores @ vt + log_cum.exp().unsqueeze(-1) * (qt @ w0.transpose(-1, -2))
    assert rel_rms(out, expected.transpose(1, 2)) < 1e-12
    decay_to_end = between[..., -1, :] * lr.transpose(1, 2)  # [B, H, T]
    expected_state = alpha.prod(-1)[..., None, None] * w0 + (vt * decay_to_end.unsqueeze(-1)).transpose(-1, -2) @ kt
    assert rel_rms(final["W"], expected_state) < 1e-12


# ---------------------------------------------------------------------------------------------
# fla: delta rule, gated delta rule, gated delta product


def fixed_loss(out: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """A scalar that weighs every output and state entry differently (layout-independent weights)."""
    w_out = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return (out * w_out).sum() + (state * torch.linspace(1, -1, state.numel(), dtype=state.dtype).view_as(state)).sum()


def fla_leaves(q, k, v, lr, w0, decay=None):
    """fp32 leaves for fla in ``[B, T, H, D]`` layout; ``S_0 = W_0^T``; ``g = log(decay)``."""
    leaves = {"q": q, "k": k, "v": v, "lr": lr, "w0": w0} | ({} if decay is None else {"decay": decay})
    return {n: x.float().requires_grad_() for n, x in leaves.items()}


def fla_result(leaves, out, state):
    """fla's output ``[B, T, H, D_v]``, state (as our ``W``) and gradients, named as in :func:`ours`."""
    state = state.transpose(-1, -2)
    grads = torch.autograd.grad(fixed_loss(out, state), list(leaves.values()))
    return {"out": out, "W": state} | {f"d{n}": g for n, g in zip(leaves, grads, strict=True)}


def ours(scan, spec, q, k, v, lr, w0, decay=None):
    """Our output, final ``W`` and gradients (fp64), named as in :func:`fla_result`."""
    leaves = {"q": q, "k": k, "v": v, "lr": lr, "w0": w0} | ({} if decay is None else {"decay": decay})
    leaves = {n: x.detach().clone().requires_grad_() for n, x in leaves.items()}
    gates = {n: leaves[n] for n in spec.resolve().required_gates()}
    out, final = scan(leaves["q"], leaves["k"], leaves["v"], spec, gates, initial_state={"W": leaves["w0"]},
                      output_final_state=True)  # fmt: skip
    grads = torch.autograd.grad(fixed_loss(out, final["W"]), list(leaves.values()))
    return {"out": out, "W": final["W"]} | {f"d{n}": g for n, g in zip(leaves, grads, strict=True)}


SCANS = pytest.mark.parametrize("scan", [reference_scan, delta_scan], ids=["reference", "delta"])


@SCANS
@pytest.mark.parametrize("preset", ["deltanet", "longhorn"])
def test_delta_rule_equals_fla_delta_rule_recurrence(preset, scan):
    """l2 + none + linear + gd (Longhorn: implicit gd) == fla ``delta_rule_recurrence``.

    Alignment: fla takes ``[B, H, T, D]`` (heads before time), multiplies ``q`` by ``D_k^-1/2``
    (we pass it ``q * sqrt(D_k)``), keeps ``S = W^T`` ``[B, H, D_k, D_v]``, computes in fp32, and
    its ``beta`` is our lr; for Longhorn we give it ``beta = lr / (1 + lr ||k||^2)`` built from the
    same leaves. Outputs, final state and the gradients of q, k, v, lr and W_0 agree.
    """
    naive = pytest.importorskip("fla.ops.delta_rule.naive")
    q, k, v, lr, _, w0 = fla_inputs()
    x = fla_leaves(q, k, v, lr, w0)
    beta = x["lr"] / (1 + x["lr"] * (x["k"] * x["k"]).sum(-1)) if preset == "longhorn" else x["lr"]
    heads_first = [(x[n] * (q.shape[-1] ** 0.5 if n == "q" else 1)).transpose(1, 2) for n in ("q", "k", "v")]
    out, state = naive.delta_rule_recurrence(
        *heads_first, beta.transpose(1, 2), initial_state=x["w0"].transpose(-1, -2), output_final_state=True
    )
    expected = fla_result(x, out.transpose(1, 2), state)
    assert_close(ours(scan, PRESETS[preset].spec, q, k, v, lr, w0), expected, FLA_TOLERANCE)


@SCANS
def test_gated_delta_rule_equals_fla_naive_recurrent_gated_delta_rule(scan):
    """l2 + l2 decay + linear + gd(grad_at decayed) == fla ``naive_recurrent_gated_delta_rule``.

    Alignment: fla's ``g`` is the log-decay (``g = log alpha``), ``beta`` our lr, ``scale=1`` (no q
    scaling), ``[B, T, H, D]`` layout, state ``S = W^T``, fp32. It decays the state, then applies the
    delta rule at the decayed state: our ``grad_at="decayed"``.
    """
    naive = pytest.importorskip("fla.ops.gated_delta_rule.naive")
    q, k, v, lr, decay, w0 = fla_inputs()
    x = fla_leaves(q, k, v, lr, w0, decay)
    out, state = naive.naive_recurrent_gated_delta_rule(
        x["q"], x["k"], x["v"], x["lr"], x["decay"].log(), scale=1.0,
        initial_state=x["w0"].transpose(-1, -2), output_final_state=True,
    )  # fmt: skip
    expected = fla_result(x, out, state)
    assert_close(ours(scan, PRESETS["gated_deltanet"].spec, q, k, v, lr, w0, decay), expected, FLA_TOLERANCE)


@SCANS
def test_deltaproduct_equals_fla_naive_recurrent_gated_delta_product(scan):
    """l2 + l2 decay + linear + gd(steps=2, grad_at decayed) == fla ``naive_recurrent_gated_delta_product``.

    Alignment: fla takes ``num_householder`` keys/values/betas per token; ours repeats the token's own
    ``k, v, lr`` ``steps`` times, so fla gets them ``repeat_interleave``-d along time. ``g = log alpha``
    is applied once per token before the steps, the read is after the last step, ``scale=1``.
    """
    naive = pytest.importorskip("fla.ops.gated_delta_product.naive")
    q, k, v, lr, decay, w0 = fla_inputs()
    x = fla_leaves(q, k, v, lr, w0, decay)
    repeat = {n: x[n].repeat_interleave(2, dim=1) for n in ("k", "v", "lr")}
    out, state = naive.naive_recurrent_gated_delta_product(
        x["q"], repeat["k"], repeat["v"], x["decay"].log(), repeat["lr"], scale=1.0,
        initial_state=x["w0"].transpose(-1, -2), output_final_state=True, num_householder=2,
    )  # fmt: skip
    expected = fla_result(x, out, state)
    assert_close(ours(scan, PRESETS["deltaproduct"].spec, q, k, v, lr, w0, decay), expected, FLA_TOLERANCE)


# ---------------------------------------------------------------------------------------------
# fla: Titans-linear


def layer_norm_parts(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x - mean) / rstd`` and ``rstd = sqrt(var + eps)`` over the last dimension, as fla writes them."""
    rstd = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
    return (x - x.mean(-1, keepdim=True)) / rstd, rstd


def fla_titans_signal(km, target, w, b, eps):
    """The signal fla's naive Titans-linear back-propagates into ``M`` for ``km = k M``, as printed.

    ``g = w * (w * LN(km) + b - target)``, then ``D g - sum(g) / (rstd D) - x_hat (g . x_hat) / (rstd D)``:
    by operator precedence only the last two terms are divided by ``rstd D``.
    """
    x_hat, rstd = layer_norm_parts(km, eps)
    g = w * (w * x_hat + b - target)
    dim = km.shape[-1]
    return dim * g - g.sum(-1, keepdim=True) / (rstd * dim) - x_hat * (g * x_hat).sum(-1, keepdim=True) / (rstd * dim)


class FlaTitansSignal(AttentionalBias):
    """A bias whose error signal is :func:`fla_titans_signal` (a loss with that gradient, w.r.t. ``pred``).

    ``w``, ``b`` ``[H, D]``: fla's per-head LayerNorm affine, broadcast over ``[B, H, 1, D]``.
    """

    def __init__(self, w: torch.Tensor, b: torch.Tensor, eps: float) -> None:
        super().__init__(NoParams())
        self.w, self.b, self.eps = w[None, :, None], b[None, :, None], eps

    def loss(self, pred, target, gates):
        return (pred * fla_titans_signal(pred, target, self.w, self.b, self.eps).detach()).sum(-1)


def build(axis: str, name: str, params: dict | None = None):
    return REGISTRIES[axis].get(name).build(params)


@pytest.mark.parametrize("use_chunk", [False, True], ids=["recurrent", "chunk"])
def test_titans_linear_scan_equals_fla_titans_linear(use_chunk):
    """Linear memory + momentum + l2 decay, mini-batch b == fla ``chunk_titans_linear_ref``.

    fla's Titans-linear memory is ``k -> k + w * LN(k M) + b`` trained on ``||. - v||^2``:
    ``S_t = eta_t S_{t-1} - 2 theta_t k_t^T v_new_t``, ``M_t = (1 - alpha_t) M_{t-1} + S_t``, the
    gradient taken at ``M`` of the start of the current chunk, and the read
    ``o_t = q M_t + w * LN(q M_t) + b`` (the residual adds ``q M_t``, not ``q``).

    Neither the memory (LayerNorm with affine inside, residual on the pre-norm output at read) nor
    fla's LayerNorm backward (see :func:`test_fla_titans_layernorm_backward_is_not_the_gradient`) is a
    point of our space, so this test aligns everything else and injects fla's error signal:

    - memory: our linear memory ``W = M^T``, so ``pred = W k = k M`` (fla's ``km``);
    - bias: :class:`FlaTitansSignal`, fla's signal for target ``v - k`` (we pass ``v - k`` as values);
    - algorithm: momentum with ``batch_size`` = fla's ``chunk_size``, ``grad_at="previous"``, read after
      the write; gates ``lr = 2 theta`` (fla's loss has no 1/2), ``momentum = eta``, ``decay = 1 - alpha``;
    - read: fla's output is ``o + w * LN(o) + b`` of ours;
    - T a multiple of the chunk (fla pads with copied gates, which changes its final state).

    Both fla paths (token loop and chunked matmuls) agree with ours: the scan structure (momentum,
    decay, where the gradient is taken, the lr factor, state layout) is what this checks.
    """
    naive = pytest.importorskip("fla.ops.titans.naive")
    batch, length, heads, dim, chunk, eps = 2, 16, 2, 8, 4, 1e-6
    q, k, v = (randn(batch, length, heads, dim, seed=s, scale=0.5) for s in (1, 2, 3))
    w, b = rand(heads, dim, seed=4, low=0.5, high=1.5), randn(heads, dim, seed=5, scale=0.1)
    theta, alpha = rand(batch, length, heads, seed=6, high=0.05), rand(batch, length, heads, seed=7, high=0.1)
    eta, m0 = rand(batch, length, heads, seed=8), randn(batch, heads, dim, dim, seed=9, scale=0.1)
    out, state = naive.chunk_titans_linear_ref(
        *(x.float() for x in (q, k, v, w, b)), *(x.float().unsqueeze(-1) for x in (theta, alpha, eta)),
        eps=eps, chunk_size=chunk, initial_state=m0.float(), output_final_state=True, use_chunk=use_chunk,
    )  # fmt: skip

    spec = Components(
        memory=build("memory", "linear"),
        bias=FlaTitansSignal(w, b, eps),
        retention=build("retention", "l2"),
        algorithm=build("algorithm", "momentum", {"batch_size": chunk}),
    )
    gates = {"lr": 2 * theta, "decay": 1 - alpha, "momentum": eta}
    ours, final = reference_scan(q, k, v - k, spec, gates, initial_state={"W": m0.transpose(-1, -2)},
                                 output_final_state=True)  # fmt: skip
    ours = ours + F.layer_norm(ours, (dim,), eps=eps) * w + b
    assert rel_rms(ours, out) < FLA_TOLERANCE
    assert rel_rms(final["W"], state.transpose(-1, -2)) < FLA_TOLERANCE
    assert rel_rms(final["W"], m0.transpose(-1, -2)) > 0.1  # the memory moved


def test_fla_titans_layernorm_backward_is_not_the_gradient():
    """Why fla's Titans-linear cannot be matched by any memory + bias of ours: its LN backward.

    Our depth-1 residual MLP memory ``x + LN(W x)`` (no affine) is fla's memory with ``w = 1, b = 0``.
    One fla step from ``M_0`` with ``alpha = 1`` (the old state is dropped), ``eta = 0`` gives
    ``M_1 = -2 theta k^T v_new``, from which we read ``v_new``. It equals the formula as printed
    (:func:`fla_titans_signal`, where ``D * grad`` is not divided by ``rstd * D``), not the gradient
    of ``||k + LN(k M) - v||^2`` (fla's commented-out line; autograd here). Our reference takes the
    true gradient step.
    """
    naive = pytest.importorskip("fla.ops.titans.naive")
    batch, heads, dim, eps, theta = 2, 2, 8, 1e-6, 0.25
    q, k, v = (randn(batch, 1, heads, dim, seed=s) for s in (1, 2, 3))
    m0 = randn(batch, heads, dim, dim, seed=4, scale=0.3)
    w, b = torch.ones(heads, dim, dtype=F64), torch.zeros(heads, dim, dtype=F64)
    gate = lambda value: torch.full((batch, 1, heads, 1), value, dtype=F64)  # noqa: E731
    _, m1 = naive.chunk_titans_linear_ref(
        *(x.float() for x in (q, k, v, w, b, gate(theta), gate(1.0), gate(0.0))), eps=eps, chunk_size=1,
        initial_state=m0.float(), output_final_state=True, use_chunk=False,
    )  # fmt: skip
    kh = k.transpose(1, 2)  # [B, H, 1, D]
    fla_signal = -(kh @ m1.double()) / (2 * theta * (kh * kh).sum(-1, keepdim=True))
    km = kh @ m0
    printed = fla_titans_signal(km, v.transpose(1, 2) - kh, 1.0, 0.0, eps)

    def loss(km):
        return 0.5 * (kh + F.layer_norm(km, (dim,), eps=eps) - v.transpose(1, 2)).pow(2).sum()

    true = torch.func.grad(loss)(km)
    assert rel_rms(fla_signal, printed) < FLA_TOLERANCE
    assert rel_rms(fla_signal, true) > 0.5

    spec = MirasSpec.of({"name": "mlp", "params": {"depth": 1, "ln_eps": eps}}, "l2", "l2", "gd")
    _, final = reference_scan(q, k, v, spec, {"lr": gate(2 * theta)[..., 0], "decay": gate(0.0)[..., 0]},
                              initial_state={"W1": m0.transpose(-1, -2)}, output_final_state=True)  # fmt: skip
    assert rel_rms(final["W1"], -2 * theta * true.transpose(-1, -2) @ kh) < 1e-12


# ---------------------------------------------------------------------------------------------
# titans-pytorch: NeuralMemory


def neural_memory(dim: int, batch_size: int, chunk_size: int, momentum: bool, decay_bias: float | None):
    """titans-pytorch ``NeuralMemory`` (heads 1, fp64) aligned with our ``mlp`` memory (depth 2, x4).

    Its ``ResidualNorm`` multiplies the LayerNorm by ``gamma + 1`` where ``gamma`` (init 0) is a
    parameter of the memory, so the inner loop would learn it; our memory has no LayerNorm gain (its
    gradient is not an outer product), so ``gamma`` is frozen at 0 by making it a plain attribute.
    """
    titans = pytest.importorskip("titans_pytorch")
    models = pytest.importorskip("titans_pytorch.memory_models")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = models.ResidualNorm(dim, models.MemoryMLP(dim, depth=2, expansion_factor=4.0))
        del model.norm.gamma
        model.norm.gamma = torch.zeros(dim)
        memory = titans.NeuralMemory(
            dim, chunk_size=chunk_size, batch_size=batch_size, heads=1, model=model,
            mem_model_norm_add_residual=False, momentum=momentum, init_decay_bias=decay_bias,
        )  # fmt: skip
    return memory.double()


def neural_memory_inputs(memory, seq: torch.Tensor, chunk_size: int):
    """Its ``q, k, v`` ``[B, T, 1, D]``, its per-chunk decay and momentum ``[B, T / chunk]``, from its layers."""
    with torch.no_grad():
        stored = memory.store_norm(seq)
        pooled = memory.reduce_to_chunk_rep(stored, chunk_size=chunk_size)
        q = memory.to_queries(memory.retrieve_norm(seq))
        k, v = memory.to_keys(stored), memory.to_values(stored)
        decay = memory.to_decay_factor(pooled).sigmoid().squeeze(-1)
        mu = memory.to_momentum(pooled).sigmoid()[0].squeeze(-1) if memory.to_momentum is not None else None
    return q.unsqueeze(2), k.unsqueeze(2), v.unsqueeze(2), decay, mu


def neural_memory_weights(memory, weights) -> dict[str, torch.Tensor]:
    """Its ``x @ P`` weights ``[(B H), in, out]`` as our ``W1, W2`` ``[B, 1, out, in]``."""
    names = {"model.weights.0": "W1", "model.weights.1": "W2"}
    return {names[n]: w.transpose(-1, -2).unsqueeze(1) for n, w in weights.items()}


NEURAL_MEMORY_CASES = {
    "titans-b4": (4, True, None, "l2", "momentum"),
    "titans-b1": (1, True, None, "l2", "momentum"),
    "gd-decay-b4": (4, False, None, "l2", "gd"),
    "gd-b4": (4, False, float("-inf"), "none", "gd"),
}


@pytest.mark.parametrize("case", list(NEURAL_MEMORY_CASES))
def test_mlp_memory_equals_titans_pytorch_neural_memory(case):
    """MLP memory + l2 bias + (GD | momentum) + (l2 decay | none), mini-batch b == ``NeuralMemory``.

    Alignment (titans-pytorch 0.5.5):

    - memory: its default ``MemoryMLP(depth=2, expansion_factor=4)`` in ``ResidualNorm``
      (``x + LN(x W1 -> gelu -> W2)``, no LN affine, eps 1e-5) is our ``mlp`` memory with weights
      transposed (``P = W^T``); its LN gain ``gamma`` is frozen at 0 (see :func:`neural_memory`);
    - bias: its loss is the MSE averaged over the feature dim, ``(2 / D) * 1/2 ||e||^2``, and its
      adaptive lr weighs it, so our ``lr = 2 * lr_theirs / D``;
    - ``chunk_size=1``: its momentum and decay gates are per chunk, so per token here (the chunk
      pooling is the identity); taken from its own layers, ``momentum = mu``, our ``decay = 1 - decay``;
    - ``batch_size`` = our b: every token of a b-segment is differentiated at the segment's start
      weights (``grad_at="previous"``), the weights move to the last update at each boundary;
    - reads: it reads token t with the weights after t's update (``retrieve_memories`` pads one
      position in front), our ``read="after_write"``; outputs are compared with heads=1 (no gate,
      no head merge);
    - no decay: ``init_decay_bias=-inf`` gives ``decay = sigmoid(-inf) = 0`` exactly (retention none);
    - T = 10 with b = 4 ends inside a mini-batch: outputs and the last update still agree.

    Compared: retrieved outputs, the weights after the sequence, the momentum.
    """
    b, momentum, decay_bias, retention, algorithm = NEURAL_MEMORY_CASES[case]
    dim, batch, length = 8, 2, 10
    memory = neural_memory(dim, b, 1, momentum, decay_bias)
    seq = randn(batch, length, dim, seed=11)
    retrieved, state, (_, lr) = memory(seq, return_surprises=True)
    q, k, v, decay, mu = neural_memory_inputs(memory, seq, 1)

    spec = MirasSpec.of({"name": "mlp", "params": {"depth": 2, "expansion": 4}}, "l2", retention,
                        {"name": algorithm, "params": {"batch_size": b}})  # fmt: skip
    gates = {"lr": 2 * lr.detach().transpose(1, 2) / dim, "decay": 1 - decay, "momentum": mu}
    gates = {n: gates[n].view(batch, length, 1) for n in spec.resolve().required_gates()}
    start = neural_memory_weights(memory, memory.init_weights(batch))
    out, final = reference_scan(q, k, v, spec, gates, initial_state=start, output_final_state=True)

    assert rel_rms(out[:, :, 0], retrieved) < 1e-10
    last_weights, last_momentum = state.states
    for name, weight in neural_memory_weights(memory, last_weights).items():
        assert rel_rms(final[name], weight) < 1e-10, name
        assert rel_rms(final[name], start[name]) > 1e-3, name  # the memory moved
    if momentum:
        for name, mom in neural_memory_weights(memory, last_momentum.apply(lambda t: t[0])).items():
            assert rel_rms(final[f"momentum.{name}"], mom) < 1e-10, name


def test_chunked_store_of_titans_pytorch_is_a_minibatch_with_one_decay_per_chunk():
    """``chunk_size = batch_size = c > 1``, GD + decay: final weights, and the reads at chunk ends.

    With chunks, titans-pytorch sums the chunk's lr-weighted gradients (all at the chunk-start
    weights) into one update and applies one decay per chunk: ``W_n = (1 - d_n) W_{n-1} - sum_i lr_i g_i``.
    That is our mini-batch b = c with the decay ``1 - d_n`` on the chunk's first token and 1 on the
    others. Its reads inside a chunk see the weights of the previous chunk boundary (ours see each
    token's own write), so only the last token of each chunk reads the same weights. With momentum the
    two differ: it adds the chunk's momentum to the weights once per chunk, ours once per token.
    """
    dim, batch, length, chunk = 8, 2, 12, 4
    memory = neural_memory(dim, chunk, chunk, momentum=False, decay_bias=None)
    seq = randn(batch, length, dim, seed=12)
    retrieved, state, (_, lr) = memory(seq, return_surprises=True)
    q, k, v, decay, _ = neural_memory_inputs(memory, seq, chunk)

    first = torch.zeros(chunk, dtype=F64)
    first[0] = 1
    per_token = 1 - (decay.unsqueeze(-1) * first).flatten(-2)  # 1 - d_n on the chunk's first token, else 1
    spec = MirasSpec.of({"name": "mlp", "params": {"depth": 2, "expansion": 4}}, "l2", "l2",
                        {"name": "gd", "params": {"batch_size": chunk}})  # fmt: skip
    gates = {"lr": 2 * lr.detach().transpose(1, 2) / dim, "decay": per_token.unsqueeze(-1)}
    start = neural_memory_weights(memory, memory.init_weights(batch))
    out, final = reference_scan(q, k, v, spec, gates, initial_state=start, output_final_state=True)

    for name, weight in neural_memory_weights(memory, state.states[0]).items():
        assert rel_rms(final[name], weight) < 1e-10, name
        assert rel_rms(final[name], start[name]) > 1e-3, name
    ends = slice(chunk - 1, None, chunk)
    assert rel_rms(out[:, ends, 0], retrieved[:, ends]) < 1e-10
