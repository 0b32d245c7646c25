"""Measure a sweep: wall time by phase, the driver's overhead, and peak memory of the whole process tree.

    python benchmarks/sweep_overhead.py configs/quickstart.yaml [--out DIR]

Runs ``run_sweep.py CONFIG --fresh`` in a subprocess, timestamps its progress lines, and samples
the resident memory of the driver and every process under it (Ray's raylet, GCS and trial
workers) every 0.2 s. The overhead is the sweep's wall time minus the trials' own time spread over
the parallel slots (sum of trial times / slots): Ray and MLflow start-up, scheduling, imbalance.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc)."""
    children, todo, total = _children(), [pid], 0
    while todo:
        current = todo.pop()
        total += _rss(current)
        todo += children.get(current, [])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, help="sweep output folder (default: the sweep's own)")
    args = parser.parse_args()
    command = [sys.executable, str(ROOT / "run_sweep.py"), str(args.config), "--fresh"]
    command += ["--out", str(args.out)] if args.out else []
    started = time.perf_counter()
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"tree": 0, "driver": 0}

    def sample() -> None:
        while driver.poll() is None:
            peak["tree"] = max(peak["tree"], tree_rss(driver.pid))
            peak["driver"] = max(peak["driver"], _rss(driver.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    marks: dict[str, float] = {}
    slots = 1
    assert driver.stdout is not None
    for line in driver.stdout:
        now = time.perf_counter() - started
        print(f"{now:7.1f}  {line}", end="", flush=True)
        if "already finished; launching" in line:
            marks["tracking ready"] = now
        elif line.startswith("  running on"):
            marks["ray ready"] = now
            slots = int(re.search(r"up to (\d+) trials", line).group(1))
        elif line.startswith("  start ") and "first trial started" not in marks:
            marks["first trial started"] = now
        elif re.match(r"  \[\d+/\d+\]", line):
            marks["last trial ended"] = now
        elif match := re.search(r"trial time, summed: ([\d.]+) s", line):
            trial_seconds = float(match.group(1))
    code = driver.wait()
    wall = time.perf_counter() - started
    sampler.join()
    print(f"\nexit code {code}; wall {wall:.1f} s")
    for name, at in marks.items():
        print(f"  {name:<20} at {at:6.1f} s")
    ideal = trial_seconds / slots
    print(f"trial time summed {trial_seconds:.1f} s over {slots} slots = {ideal:.1f} s if perfectly packed")
    print(f"driver overhead: {wall - ideal:.1f} s ({(wall - ideal) / wall:.0%} of the wall time)")
    print(f"peak memory: driver {peak['driver'] / 2**20:.0f} MiB, whole process tree {peak['tree'] / 2**20:.0f} MiB")
    return code


if __name__ == "__main__":
    sys.exit(main())
