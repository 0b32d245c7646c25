"""Whole-model gradient norm at initialisation against the sequence length, per preset.

The measurement behind docs/results.md ("The outer gradient against T") and
tests/models/test_outer_gradient.py: back-propagating the LM loss through a memory's mini-batch
recurrence must not blow up as the sequence grows. Prints a Markdown table (one row per preset,
one column per length, and the growth from the first length to the last) under the device,
versions and commit.

    python benchmarks/outer_gradient.py                     # results_lm's shape: d_model 128, 4 heads, vocab 4096
    python benchmarks/outer_gradient.py --presets yaad --lengths 16 256 --set model.qk_norm=l2
"""

from __future__ import annotations

import argparse
import platform
import sys
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import ValidationError

from miras.bench.report import git_commit
from miras.config import apply_overrides
from miras.config.schema import ModelConfig
from miras.models import LanguageModel, architecture
from miras.runners.health import gradient_norms

PRESETS = ["gated_deltanet", "titans", "moneta", "yaad", "memora"]


def gradient_norm_at_init(name: str, config: ModelConfig, vocab: int, batch: int, length: int) -> float:
    """Whole-model gradient norm of the next-token loss on random ``[batch, length]`` tokens, at init."""
    torch.manual_seed(0)
    model = LanguageModel(architecture(name), vocab, config)
    tokens = torch.randint(0, vocab, (batch, length + 1), generator=torch.Generator().manual_seed(1))
    F.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten()).backward()
    return gradient_norms(model)["grad_norm"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[16, 64, 128, 256])
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="model.KEY=VALUE",
        help="a ModelConfig field, e.g. model.qk_norm=l2",
    )
    args = parser.parse_args(argv)
    data: dict[str, Any] = {"model": {"d_model": 128, "n_heads": 4}}
    problems = apply_overrides(data, args.set)
    if problems or set(data) != {"model"}:
        parser.error("; ".join(f"{where}: {why}" for where, why in problems) or "only model.KEY=VALUE fields")
    try:
        config = ModelConfig(**data["model"])
    except ValidationError as error:
        parser.error(str(error))
    print(
        f"device cpu ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"python {platform.python_version()}, commit {git_commit()}, {torch.get_num_threads()} threads"
    )
    print(
        f"model {config.model_dump(include={'d_model', 'n_layers', 'n_heads', 'qk_norm', 'value_norm'})}, "
        f"vocab {args.vocab}, batch {args.batch}\n"
    )
    print(
        "| preset | " + " | ".join(f"T={t}" for t in args.lengths) + f" | T={args.lengths[-1]} / T={args.lengths[0]} |"
    )
    print("|---|" + "---:|" * (len(args.lengths) + 1))
    for name in args.presets:
        norms = [gradient_norm_at_init(name, config, args.vocab, args.batch, t) for t in args.lengths]
        cells = " | ".join(f"{n:.3g}" for n in norms)
        print(f"| {name} | {cells} | {norms[-1] / norms[0]:.3g} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
