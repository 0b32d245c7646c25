"""Kill -9 of the driver mid-sweep, then the same command again: finished trials are neither re-run
nor duplicated, the rest run (the interrupted one from its checkpoint)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from .conftest import run_sweep_process, sweep_command, trial_runs, write_sweep

PRESETS = ["gla", "retnet", "linear_attention"]
TRAINING = {"steps": 40, "batch_size": 8, "warmup_steps": 2, "eval_every": 10, "checkpoint_every": 5}


def finished_trials(database: Path) -> int:
    """Trials the driver has ended FINISHED, read straight from the sqlite file (read-only: an
    MLflow client here could race the driver's first creation of the tables)."""
    query = (
        "SELECT count(*) FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
        "WHERE tags.key = 'miras.role' AND tags.value = 'trial' AND runs.status = 'FINISHED'"
    )
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            return connection.execute(query).fetchone()[0]
    except sqlite3.OperationalError:  # no file or no tables yet
        return 0


def wait_for_a_finished_trial(database: Path, driver: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the sweep ended before it could be killed"
        if finished_trials(database):
            return
        time.sleep(0.5)
    raise AssertionError("no trial finished in time")


def test_kill_9_then_rerun_continues_the_sweep(tmp_path, short_dir):
    out = short_dir / "out"
    config = write_sweep(
        tmp_path / "resume.yaml", "resume", space={"presets": PRESETS}, training=TRAINING, resources={"cpu": 2}
    )
    flags = ("--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    uri = f"sqlite:///{out / 'mlflow.db'}"
    driver = subprocess.Popen(
        sweep_command(config, *flags), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for_a_finished_trial(out / "mlflow.db", driver)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started (same session)
        driver.wait()
    _, before = trial_runs(uri, "resume")
    finished = {run.info.run_name: run for run in before if run.info.status == "FINISHED"}
    assert 1 <= len(finished) < len(PRESETS)

    rerun = run_sweep_process(config, *flags)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    missing = len(PRESETS) - len(finished)
    assert f"{len(finished)} of {len(PRESETS)} trials already finished; launching {missing}" in rerun.stdout
    started = [line.split()[1] for line in rerun.stdout.splitlines() if line.startswith("  start ")]
    assert sorted(started) == sorted(f"{p}-s0" for p in PRESETS if f"{p}-s0" not in finished)

    parents, after = trial_runs(uri, "resume")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    summary = parents[0].data.metrics  # the resumed sweep's summary counts every trial, before and after the kill
    assert (summary["trials_finished"], summary["trials_failed"], summary["trials_planned"]) == (3, 0, 3)
    assert sorted(run.info.run_name for run in after) == sorted(f"{p}-s0" for p in PRESETS)
    assert all(run.info.status == "FINISHED" and run.data.tags["miras.status"] == "finished" for run in after)
    assert len({run.data.tags["miras.run_key"] for run in after}) == len(PRESETS)
    for run in after:
        if run.info.run_name in finished:  # the same run, untouched
            earlier = finished[run.info.run_name]
            assert (run.info.run_id, run.info.start_time) == (earlier.info.run_id, earlier.info.start_time)
