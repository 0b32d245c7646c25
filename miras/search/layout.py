"""Where a sweep writes (its output folder, tracking store, Tune storage, checkpoints and Optuna
studies) and where its trials run (a local Ray started and always shut down by the sweep, or an
existing cluster)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SweepConfig


@dataclass
class SweepOptions:
    """Command-line options of ``miras sweep``."""

    out: Path | None = None
    """Output folder; default ``runs/<sweep name>``."""
    tracking_uri: str | None = None
    """MLflow tracking URI; default ``tracking.uri``, else ``sqlite:///<out>/mlflow.db``."""
    address: str | None = None
    """Ray cluster to join; default a local Ray."""
    storage: str | None = None
    """Ray Tune storage path; a local (shared) path also holds the trials' checkpoints."""
    cache_dir: Path | None = None
    """Data and tokenizer caches of the trials."""
    fresh: bool = False
    dry_run: bool = False
    report: bool = True
    """Write the sweep's report (``miras report``) into ``<out>/report`` when it completes."""


class Layout:
    """Where a sweep writes: the output folder, the tracking store, Tune's storage and the checkpoints."""

    def __init__(self, config: SweepConfig, options: SweepOptions) -> None:
        self.out = (options.out or Path("runs") / config.name).resolve()
        self.embedded = options.tracking_uri is None and config.tracking.uri is None
        """Whether the tracking store is the default sqlite file in the output folder."""
        self.uri = options.tracking_uri or config.tracking.uri or f"sqlite:///{self.out / 'mlflow.db'}"
        self.experiment = config.tracking.experiment or config.name
        shared = options.storage is not None and "://" not in options.storage
        self.storage = (
            str(Path(options.storage).resolve()) if shared else options.storage or str(self.out / "ray_results")
        )
        """Ray Tune's storage path (a local path is made absolute)."""
        self.trials_dir = (Path(self.storage) / config.name if shared else self.out) / "trials"
        """Checkpoints, one folder per run key: on the shared storage path if there is one."""
        self.optuna_uri = f"sqlite:///{self.out / 'optuna.db'}"

    def artifact_location(self) -> str | None:
        """Artifacts of a sqlite store go beside its database file; a server chooses its own."""
        prefix = "sqlite:///"
        if not self.uri.startswith(prefix):
            return None
        return (Path(self.uri[len(prefix) :]).parent / "mlartifacts").as_uri()

    def browse_command(self) -> str:
        if self.uri.startswith("sqlite:"):
            return f"mlflow ui --backend-store-uri {self.uri}"
        return f"open {self.uri} in a browser (MLflow server)"


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


__all__ = ["Layout", "SweepOptions", "ray_session"]
