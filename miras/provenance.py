"""Where a result came from: the miras checkout's commit, package versions, the device.

Shared by the benchmark records (:mod:`miras.bench.report`) and the sweep's MLflow runs
(:mod:`miras.search`), which tag every parent and child run with :func:`provenance_tags`.
The commit is read from the folder this package lives in, never the working directory, so a
Ray trial running in its own working directory still names the checkout it imported.
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the ``miras`` package: the checkout's root when miras is run from one."""

GIT_COMMIT, GIT_DIRTY, DEVICE = "miras.git_commit", "miras.git_dirty", "miras.device"
VERSION_PREFIX = "miras.version."
"""``miras.version.<package>`` tags: one per name of :data:`VERSIONED`, and ``python``."""
VERSIONED = ("miras", "torch", "triton", "ray", "optuna", "mlflow")
ABSENT, UNKNOWN = "absent", "unknown"


def package_version(name: str, missing: str = "not installed") -> str:
    """The installed version of the distribution ``name``, or ``missing``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return missing


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


PRELOADED_ALLOCATORS = {"jemalloc": "libjemalloc", "tcmalloc": "libtcmalloc", "mimalloc": "libmimalloc"}
"""Allocators that replace the C library's malloc when preloaded (``LD_PRELOAD``), by library name."""


def memory_allocator(maps: Path = Path("/proc/self/maps")) -> str:
    """The malloc this process runs on: a preloaded allocator's name (``jemalloc``), else ``system``
    (glibc's on Linux). CPU times of the MLP memories depend on it (docs/benchmarks.md), so the
    benchmarks print it beside their numbers."""
    with contextlib.suppress(OSError):
        mapped = maps.read_text()
        for name, library in PRELOADED_ALLOCATORS.items():
            if f"/{library}" in mapped:
                return name
    return "system"


def git_state(root: Path = ROOT) -> tuple[str, bool] | None:
    """``(full commit, dirty)`` of the git checkout at ``root`` (dirty: tracked files differ from
    HEAD), or ``None`` when ``root`` is not a checkout's top folder (miras installed as a package)."""
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if Path(top).resolve() != root.resolve():  # e.g. a site-packages folder inside another repository
            return None
        commit = _git(root, "rev-parse", "HEAD")
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root, capture_output=True).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit, dirty


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def git_commit() -> str:
    """Short commit of the miras checkout (``-dirty`` with uncommitted changes), or ``unknown``."""
    state = git_state()
    if state is None:
        return UNKNOWN
    commit, dirty = state
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = _git(ROOT, "rev-parse", "--short", commit)
    return commit + ("-dirty" if dirty else "")


def device_name(device: Any = None) -> str:
    """``cpu``, or the CUDA device's name (``NVIDIA H200``); ``device`` is a ``torch.device``, a
    name, or ``None`` for the device a trial with ``device: auto`` picks here."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def provenance_tags(device: str | None = None) -> dict[str, str]:
    """The provenance tags of a run: ``miras.git_commit`` (full commit, or ``unknown``),
    ``miras.git_dirty`` (``true``/``false``/``unknown``), ``miras.version.<package>`` for
    :data:`VERSIONED` (``absent`` when not installed) and ``python``, and ``miras.device`` when
    ``device`` (a :func:`device_name`) is given."""
    state = git_state()
    tags = {
        GIT_COMMIT: state[0] if state else UNKNOWN,
        GIT_DIRTY: (str(state[1]).lower() if state else UNKNOWN),
    }
    tags |= {VERSION_PREFIX + name: package_version(name, ABSENT) for name in VERSIONED}
    tags[VERSION_PREFIX + "python"] = platform.python_version()
    if device is not None:
        tags[DEVICE] = device
    return tags


__all__ = [
    "ABSENT",
    "DEVICE",
    "GIT_COMMIT",
    "GIT_DIRTY",
    "UNKNOWN",
    "VERSIONED",
    "VERSION_PREFIX",
    "cpu_model",
    "device_name",
    "git_commit",
    "git_state",
    "package_version",
    "provenance_tags",
]
