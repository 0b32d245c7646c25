"""Start-up cost of the ``miras`` command line: wall and CPU seconds per command, and whether it imports torch.

    python benchmarks/cli_startup.py                # 5 runs per command, the median
    python benchmarks/cli_startup.py --repeats 11

Each command runs in a fresh process from the repository root (the ``miras`` console script beside
this Python, else ``python -m miras.cli``); CPU is the child's user + system time. Whether it
imported torch comes from one more run under ``python -X importtime``. ``python -c pass`` and
``import miras.cli`` give the floor. Prints a Markdown table under the device, versions and commit.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from miras.bench.report import cpu_model, git_commit, package_version

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("miras")

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", ["-c", "pass"]),
    ("python -c 'import miras.cli'", ["-c", "import miras.cli"]),
    ("miras --help", ["-m", "miras.cli", "--help"]),
    ("miras bench --help", ["-m", "miras.cli", "bench", "--help"]),
    ("miras list", ["-m", "miras.cli", "list"]),
    ("miras validate configs/quickstart.yaml", ["-m", "miras.cli", "validate", "configs/quickstart.yaml"]),
]
"""Name and the arguments of ``python`` that run it; ``-m miras.cli`` is timed as the console script."""


def argv_of(python_args: list[str]) -> list[str]:
    """The command line timed: the ``miras`` console script for ``-m miras.cli`` when it is installed."""
    if python_args[:2] == ["-m", "miras.cli"] and SCRIPT.is_file():
        return [str(SCRIPT), *python_args[2:]]
    return [sys.executable, *python_args]


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``argv``, which must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imports_torch(python_args: list[str]) -> bool:
    """Whether ``python python_args`` imports torch, from the ``-X importtime`` lines."""
    argv = [sys.executable, "-X", "importtime", *python_args]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
    return any(line.rsplit("|", 1)[-1].strip() == "torch" for line in done.stderr.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs per command, the median is shown (default 5)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: must be positive")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"device cpu ({cpu_model()}, {os.cpu_count()} cores, load {load}), python {platform.python_version()}, "
        f"torch {package_version('torch')}, pydantic {package_version('pydantic')}, commit {git_commit()}; "
        f"median of {args.repeats} runs\n"
    )
    print("| command | wall s | CPU s | imports torch |")
    print("|---|---:|---:|---|")
    for name, python_args in COMMANDS:
        command = argv_of(python_args)
        timed(command)  # warm the file cache
        runs = [timed(command) for _ in range(args.repeats)]
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        torch = "yes" if imports_torch(python_args) else "no"
        print(f"| `{name}` | {wall:.2f} | {cpu:.2f} | {torch} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
