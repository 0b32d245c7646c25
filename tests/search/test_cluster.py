"""Cluster mode: a real ``ray start --head`` (token auth) and a real ``mlflow server`` on 127.0.0.1,
started and stopped here; a 2-trial sweep joins the cluster (``--address``) and logs over HTTP
(``--tracking-uri``). The learning rate is searched (Optuna TPE) with ASHA on."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import run_sweep_process, trial_runs

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_groups(*pgids: int) -> None:
    """Stop every process of the sessions this test started: SIGTERM, then SIGKILL after 3 s."""

    def alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True

    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
        for pgid in filter(alive, pgids):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(map(alive, pgids)):
            time.sleep(0.2)


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with code {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s")


@dataclass
class Cluster:
    address: str
    tracking_uri: str
    env: dict[str, str]


@pytest.fixture
def cluster(tmp_path: Path, short_dir: Path) -> Iterator[Cluster]:
    """A Ray head with token auth and an MLflow server, both in their own sessions, always stopped."""
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    ray_port, mlflow_port = free_port(), free_port()
    head = subprocess.Popen(
        [
            *(str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={ray_port}"),
            *("--num-cpus=2", f"--temp-dir={short_dir / 'ray'}", "--include-dashboard=false", "--disable-usage-stats"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = subprocess.Popen(
        [
            *(str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"),
            *("--artifacts-destination", str(tmp_path / "artifacts")),
        ],
        env=env | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output, _ = head.communicate(timeout=120)  # `ray start` returns once the head is up
        assert head.returncode == 0, output.decode()
        wait_for_http(f"http://127.0.0.1:{mlflow_port}/health", server)
        yield Cluster(f"127.0.0.1:{ray_port}", f"http://127.0.0.1:{mlflow_port}", env)
    finally:
        stop_groups(head.pid, server.pid)


def test_a_sweep_joins_the_cluster_and_logs_to_the_server(cluster, sweep_config, tmp_path):
    search = {"lr": {"low": 1e-3, "high": 3e-3}, "trials_per_combination": 2, "scheduler": "asha"}
    config = sweep_config("remote", space={"presets": ["gla"]}, search=search)
    flags = ["--address", cluster.address, "--tracking-uri", cluster.tracking_uri, "--out", str(tmp_path / "out")]
    result = run_sweep_process(config, *flags, "--cache-dir", str(tmp_path / "cache"), env=cluster.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"running on Ray cluster at {cluster.address}" in result.stdout
    assert f"tracking: {cluster.tracking_uri}" in result.stdout
    assert not (tmp_path / "out" / "mlflow.db").exists()
    assert (tmp_path / "out" / "optuna.db").exists()

    parents, children = trial_runs(cluster.tracking_uri, "remote")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2
    assert len({run.data.tags["miras.run_key"] for run in children}) == 2
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["miras.status"] in ("finished", "stopped")
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert 1e-3 <= float(run.data.params["lr"]) <= 3e-3
        assert run.info.run_name.startswith("gla-s0-lr")


def test_cluster_mode_is_documented():
    text = (Path(__file__).resolve().parents[2] / "docs" / "sweeps.md").read_text()
    for needle in ("ray start --head", "RAY_AUTH_TOKEN", "RAY_AUTH_MODE=disabled", "--tracking-uri", "--storage"):
        assert needle in text, needle
