"""Time a whole training step of every combination of a sweep config, and where its time goes.

Forward + loss + backward + clipping + AdamW at the config's sizes (miras/bench/step.py says what
each part holds), after a check of each model against the reference scan. Prints a Markdown
table under the device, versions and commit; ``--markdown FILE --section NAME`` also writes it
into its own section of FILE.

    python benchmarks/train_step.py configs/results_lm.yaml --threads 2
    python benchmarks/train_step.py configs/quickstart.yaml --combinations transformer deltanet --threads 1
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

from miras.bench.report import cpu_model, git_commit, package_version, write_section
from miras.bench.step import HEADER, models_of, row, time_step
from miras.config import ConfigError, format_problems, load_config
from miras.provenance import memory_allocator
from miras.search.plan import task_shape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="a sweep config (configs/*.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, as run_sweep.py takes")
    parser.add_argument("--combinations", nargs="+", help="combination labels to time (default: all)")
    parser.add_argument("--batch", type=int, help="sequences per step (default: training.batch_size)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5, help="median of up to this many runs (default: 5)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="budget per measurement (default: 60)")
    parser.add_argument("--markdown", type=Path, help="also write the table into this Markdown file")
    parser.add_argument("--section", default="step", help="the section of --markdown to replace (default: step)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine")
    if (args.batch is not None and args.batch < 1) or args.repeats < 1:
        parser.error("--batch and --repeats must be positive")
    try:
        config = load_config(args.config, args.overrides)
        builders = models_of(config, args.combinations)
    except ConfigError as error:
        print(f"{args.config}: invalid config\n{format_problems(error.problems)}", file=sys.stderr)
        return 2
    except KeyError as error:
        parser.error(str(error.args[0]))
    if args.threads:
        torch.set_num_threads(args.threads)
    vocab, length = task_shape(config.task)
    batch = args.batch or config.training.batch_size
    device = args.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(torch.device(args.device))})"
    versions = ", ".join(f"{name} {package_version(name)}" for name in ("torch", "triton"))
    model = config.model.at(config.model.widths[0])
    lines = [
        f"- device: {device}; CPU: {cpu_model()}; torch threads: {torch.get_num_threads()}; "
        f"malloc: {memory_allocator()}",
        f"- versions: Python {platform.python_version()}, {versions}; miras commit {git_commit()}",
        f"- setting: {args.config} ({config.task.name}), batch {batch} x {length} tokens, vocab {vocab}, "
        f"d_model {model.d_model}, {model.n_layers} layers, {model.n_heads} heads, mlp {model.mlp}, "
        f"impl {model.impl}; median of up to {args.repeats} runs within {args.max_seconds:g} s each",
        "- parts: forward + backward of each in isolation, summed over layers (% of the step); "
        "other: the step minus the parts",
        "",
        HEADER,
    ]
    print("\n".join(lines), flush=True)
    checks, matched = [], []
    for combination, build in builders.items():
        timing = time_step(
            config,
            combination,
            build,
            batch=batch,
            device=args.device,
            repeats=args.repeats,
            max_seconds=args.max_seconds,
        )
        lines.append(row(timing))
        checks.append(f"- {combination}: {timing.check}")
        matched.append(timing.ok)
        print(lines[-1], flush=True)
    checked = ["", "Checks (fp64, 2 sequences, against the token-loop reference scan):", "", *checks]
    print("\n".join(checked))
    if args.markdown:
        write_section(args.markdown, args.section, "\n".join([*lines, *checked]) + "\n")
    return 0 if all(matched) else 1


if __name__ == "__main__":
    sys.exit(main())
