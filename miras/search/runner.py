"""Run a sweep: expand it, look up finished trials in MLflow, run the missing ones with Ray Tune.

Resume is keyed on the tracking store: a trial whose run key has a FINISHED child run under the
sweep's parent run is done; any other child run (running when its driver was killed, killed by
Ctrl-C, failed) is deleted and its trial runs again, from its last checkpoint.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ..config import SweepConfig
from ..provenance import device_name, provenance_tags
from ..record import FAILED
from .layout import Layout, SweepOptions
from .plan import Plan, Work
from .tracking import SweepStore, is_done

EXIT_OK, EXIT_FAILED_TRIALS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class SweepError(RuntimeError):
    """A sweep that cannot start (resources, a second driver on the same output folder); exit code 2."""


def run_sweep(plan: Plan, config_text: str, options: SweepOptions, stream: TextIO | None = None) -> int:
    """Run (or resume) the sweep of ``plan``, printing to ``stream`` (stdout); returns the exit code.
    ``config_text`` is what the parent run records as ``config.yaml`` (:func:`miras.config.resolved_text`).

    Raises :class:`SweepError`, having written nothing, when the sweep cannot start.
    """
    config = plan.config
    layout = Layout(config, options)
    stream = stream or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    say(f"sweep {config.name}: {plan.describe()}")
    say(f"  results:  {layout.out}")
    say(f"  tracking: {layout.uri} (experiment {layout.experiment})")
    if options.dry_run:
        for entry in plan.listing():
            say("  " + _describe(entry))
        return EXIT_OK
    _check_resources(config, options.address)
    started = time.perf_counter()
    with _locked(layout.out):
        if options.fresh:
            _start_over(layout, config, say)
        store = SweepStore(layout.uri, layout.experiment, config.name, layout.artifact_location())
        provenance = provenance_tags(_device(config))
        parent_id = store.open_parent(provenance)
        store.log_sweep(parent_id, config_text, plan.listing())
        children = store.children(parent_id)
        finished = [run for run in children if is_done(run)]
        store.discard([run for run in children if not is_done(run)])
        work = Work.left(plan, finished)
        say(f"  {plan.total - work.count} of {plan.total} trials already finished; launching {work.count}")
        if work.count == 0:
            store.summarize(parent_id, config.objectives, plan.total)
            store.close_parent(parent_id, "FINISHED")
            _log_models(parent_id, layout, config, say)
            _report(parent_id, layout, options, say)
            _browse(layout, store.experiment_id, say)
            return EXIT_OK
        from .callbacks import TrackingCallback
        from .orchestrate import run_trials

        tracking = TrackingCallback(store, parent_id, config, layout.trials_dir, provenance)
        try:
            run_trials(plan, work, layout, options, tracking, stream)
        except BaseException as error:  # Ray failed to start, a second Ctrl-C, ...: no run stays RUNNING
            tracking.interrupt()
            store.close_parent(parent_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
            raise
        interrupted = tracking.interrupt()
        store.summarize(parent_id, config.objectives, plan.total)
        store.close_parent(parent_id, "KILLED" if interrupted else "FINISHED")
    counts = Counter(tracking.ended.values())
    shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    say(f"ran {sum(counts.values())} trials ({shown}) in {time.perf_counter() - started:.1f} s")
    say(f"  trial time, summed: {tracking.trial_seconds:.1f} s ({tracking.training_seconds:.1f} s training)")
    if interrupted:
        say(f"interrupted: {work.count - len(tracking.ended)} trials left; run the same command again to resume")
    else:
        _log_models(parent_id, layout, config, say)
        _report(parent_id, layout, options, say)
    _browse(layout, store.experiment_id, say)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED_TRIALS if counts.get(FAILED) else EXIT_OK


def _device(config: SweepConfig) -> str:
    """The parent run's ``miras.device`` until its trials report theirs: ``cpu`` unless the trials
    ask for a GPU, then this machine's (or ``cuda`` when the driver sees none: a cluster's)."""
    if not config.resources.gpu:
        return "cpu"
    import torch

    return device_name("cuda") if torch.cuda.is_available() else "cuda"


def _browse(layout: Layout, experiment_id: str, say: Callable[[str], None]) -> None:
    """How to browse the runs: the MLflow UI command, and the experiment's page in the UI's model
    training view (MLflow 3.17's UI picks its view from ``workflowType``, default GenAI)."""
    say(f"browse:   {layout.browse_command()}")
    base = "http://127.0.0.1:5000" if layout.uri.startswith("sqlite:") else layout.uri.rstrip("/")
    say(f"  then open {base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning")


def _log_models(parent_id: str, layout: Layout, config: SweepConfig, say: Callable[[str], None]) -> None:
    """Log the finished trials' models as Hugging Face folders (``tracking.log_models``)."""
    if not config.tracking.log_models:
        return
    if importlib.util.find_spec("transformers") is None:
        say("models:   not logged (tracking.log_models needs transformers: pip install 'miras[hf]')")
        return
    from ..hf.export import log_models

    try:
        logged, skipped = log_models(layout.uri, parent_id)
    except Exception as error:  # the trials and checkpoints are safe; `miras export` writes any model later
        say(f"models:   not logged ({type(error).__name__}: {error}); `miras export` writes one from its checkpoint")
        return
    if logged or skipped:
        say(f"models:   {logged} trials logged as Hugging Face folders (artifacts model/)")
    for line in skipped:
        say(f"  {line}")


def _report(parent_id: str, layout: Layout, options: SweepOptions, say: Callable[[str], None]) -> None:
    """Write the completed sweep's report into ``<out>/report`` (and log it to the parent run)."""
    if not options.report:
        return
    from ..reports import write_report

    try:
        report = write_report(parent_id, layout.uri, layout.out / "report")
    except Exception as error:  # the trials are safe in the store; the report can be rewritten later
        say(f"report:   not written ({type(error).__name__}: {error}); retry with `miras report`")
        return
    say(f"report:   {report.html}")


def _describe(entry: dict[str, Any]) -> str:
    """One line of the dry run: a fixed trial with its rate, values and run key, or a searched cell."""
    if "search" in entry:
        space = entry["search"]["space"]
        shown = ", ".join(
            f"{'lr' if path == 'training.lr' else path} ~ {_range(values)}" for path, values in space.items()
        )
        setting = f"TPE x {entry['search']['trials']}: {shown}"
    else:
        values = "".join(
            f", {path} {value:.3g}" if isinstance(value, float) else f", {path} {value}"
            for path, value in entry["values"].items()
        )
        setting = f"lr {entry['lr']:.3g}{values}  key {entry['key']}"
    return f"{entry['name']:<32} {entry['spec']:<40} d_model {entry['d_model']}  seed {entry['seed']}  {setting}"


def _range(values: dict[str, Any] | list[Any]) -> str:
    if isinstance(values, list):
        return "{" + ", ".join(map(str, values)) + "}"
    kind = "int" if values.get("int") else "log" if values.get("log") else ""
    return f"[{values['low']:g}, {values['high']:g}]{' ' + kind if kind else ''}"


def _check_resources(config: SweepConfig, address: str | None) -> None:
    """A trial must fit this machine when Ray is local (a cluster may still grow)."""
    if address is not None:
        return
    cpus = os.cpu_count() or 1
    if config.resources.cpu > cpus:
        raise SweepError(f"resources.cpu: a trial asks for {config.resources.cpu:g} CPUs; this machine has {cpus}")
    if config.resources.gpu > 0:
        import torch

        gpus = torch.cuda.device_count()
        if config.resources.gpu > gpus:
            raise SweepError(f"resources.gpu: a trial asks for {config.resources.gpu:g} GPUs; this machine has {gpus}")


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``<out>/.lock`` so that two drivers never run the same sweep folder at once."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"another driver is running the sweep in {out}") from None
        yield


def _start_over(layout: Layout, config: SweepConfig, say: Callable[[str], None]) -> None:
    """``--fresh``: delete the output folder's state and, in an external store, the sweep's runs."""
    store = "the MLflow store, " if layout.embedded else ""
    say(f"  --fresh: deleting {store}the checkpoints, Optuna studies and Ray files in {layout.out}")
    for path in layout.out.iterdir():
        if path.name != ".lock":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(layout.trials_dir, ignore_errors=True)
    if not layout.embedded:
        deleted = SweepStore(layout.uri, layout.experiment, config.name).delete_sweep()
        say(f"  --fresh: deleted {deleted} runs of sweep {config.name} in {layout.uri}")


__all__ = ["EXIT_FAILED_TRIALS", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "SweepError", "run_sweep"]
