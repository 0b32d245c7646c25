"""``miras report`` with a sweep that is not there: exit code 2, and the sweeps that are there."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from mlflow import MlflowClient

from miras.record import ROLE, SWEEP, SWEEP_ROLE, TRIAL_ROLE
from miras.reports.command import register, stored_sweeps


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="miras")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv])
    return args.func(args)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A sqlite store with the parent runs of the sweeps ``beta`` and ``alpha`` (twice) and one trial run."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    client = MlflowClient(uri)
    for experiment, sweeps in (("one", ["beta", "alpha"]), ("two", ["alpha"])):
        experiment_id = client.create_experiment(experiment)
        for sweep in sweeps:
            client.create_run(experiment_id, tags={ROLE: SWEEP_ROLE, SWEEP: sweep})
        client.create_run(experiment_id, tags={ROLE: TRIAL_ROLE, SWEEP: "not-a-sweep"})
    return uri


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return work


def test_stored_sweeps_are_the_parent_runs_names(store: str) -> None:
    assert stored_sweeps(store) == ["alpha", "beta"]


def test_an_unknown_sweep_lists_the_sweeps_of_the_store(
    store: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("nope", "--tracking-uri", store, "--no-log") == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"error: no sweep named 'nope' in {store}. Sweeps in that store: alpha, beta. There is no sweep in runs/.\n"
    )
    assert not (workdir / "reports").exists()  # nothing written


def test_an_unknown_sweep_lists_the_sweeps_under_runs_too(
    store: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("demo", "ablation"):
        (workdir / "runs" / name).mkdir(parents=True)
        (workdir / "runs" / name / "mlflow.db").touch()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # the store that `miras report nope` opens
    assert _cli("nope", "--no-log") == 2
    assert capsys.readouterr().err.endswith("Sweeps in that store: alpha, beta. Sweeps in runs/: ablation, demo\n")


def test_an_empty_store_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"sqlite:///{workdir / 'empty.db'}"
    assert _cli("nope", "--tracking-uri", uri, "--no-log") == 2
    assert capsys.readouterr().err.endswith("That store holds no sweep. There is no sweep in runs/.\n")


def test_no_store_lists_the_sweeps_under_runs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("nope") == 2
    assert capsys.readouterr().err.endswith("pass --tracking-uri. There is no sweep in runs/.\n")
    (workdir / "runs" / "demo").mkdir(parents=True)
    (workdir / "runs" / "demo" / "mlflow.db").touch()
    assert _cli("nope") == 2
    assert capsys.readouterr().err.endswith("pass --tracking-uri. Sweeps in runs/: demo\n")
