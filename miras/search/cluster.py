"""Where the trials run: a local Ray started (and always shut down) by the sweep, or an existing cluster."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SOCKET_ROOM = 43
"""Longest Ray temp dir whose session sockets (``session_<date>_<pid>/sockets/plasma_store``)
still fit the 107-byte limit of a Unix socket path."""


def local_temp_dir(out: Path) -> tuple[Path, bool]:
    """``<out>/ray_tmp``, or a fresh short folder under /tmp when that path is too long for Ray's
    sockets; the flag says whether the folder is temporary (removed after the sweep)."""
    preferred = out / "ray_tmp"
    if len(str(preferred)) <= SOCKET_ROOM:
        return preferred, False
    return Path(tempfile.mkdtemp(prefix="miras-ray-")), True


@contextmanager
def ray_session(address: str | None, out: Path) -> Iterator[str]:
    """Connect to the cluster at ``address`` (``ray start --head`` prints it), or start a local Ray
    with every CPU of this machine, no dashboard, no token auth and its files under ``out``.
    Yields a one-line description; Ray is shut down on exit, whatever happens."""
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is not None:
        import ray

        ray.init(address=address, **options)
        try:
            yield f"Ray cluster at {address}"
        finally:
            ray.shutdown()
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # before Ray reads its config
    import ray

    temp_dir, temporary = local_temp_dir(out)
    temp_dir.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count()
    try:
        ray.init(num_cpus=cpus, include_dashboard=False, _temp_dir=str(temp_dir), **options)
        yield f"local Ray ({cpus} CPUs, temp dir {temp_dir})"
    finally:
        ray.shutdown()
        if temporary:
            shutil.rmtree(temp_dir, ignore_errors=True)


__all__ = ["ray_session"]
