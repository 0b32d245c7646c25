"""A trained trial as a Hugging Face folder: the model (``config.json``, ``model.safetensors``), the
tokenizer of a text task, and where it came from (:data:`ORIGIN`)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers.utils import logging as hf_logging

from ..config.schema import LmTask
from ..runners.tasks.text import text_tokenizer
from ..runners.trainer import CHECKPOINT
from ..runners.trial import RECORD, load_trained
from .modeling import to_hf
from .tokenizer import save_tokenizer

ORIGIN = "miras_origin.json"
"""Written into an exported folder: the MLflow run it came from (``miras eval`` logs there)."""


@dataclass(frozen=True)
class Origin:
    """The trial run an exported model came from."""

    tracking_uri: str
    run_id: str
    sweep: str
    trial: str
    """The run's name (``transformer-s1``)."""


def export_trial(
    folder: Path | str, out: Path | str, origin: Origin | None = None, cache_dir: Path | None = None
) -> Path:
    """Write the model a trial trained (``folder``: ``trial.json`` and ``checkpoint.pt``) into ``out``
    as a Hugging Face folder: ``AutoModelForCausalLM.from_pretrained(out)`` loads it once
    :mod:`miras.hf` is imported, and for a text task ``AutoTokenizer.from_pretrained(out)`` loads its
    BPE (``<|endoftext|>`` as end-of-sequence, beginning and padding token), read from ``cache_dir``
    (default: the trial's) where the trial trained it, else trained again on the same documents
    (deterministic). Returns ``out``."""
    model, trial = load_trained(folder)
    bpe = None
    if isinstance(trial.task, LmTask):
        dataset = trial.task.dataset.model_dump() if trial.task.dataset is not None else None
        _, bpe = text_tokenizer(trial.task.source, trial.task.vocab_size, dataset, cache_dir or trial.cache_dir)
    ids = {} if bpe is None else {"eos_token_id": bpe.eot_id, "bos_token_id": bpe.eot_id, "pad_token_id": bpe.eot_id}
    out = Path(out)
    with _quiet():
        to_hf(model.eval(), **ids).save_pretrained(out)
    if bpe is not None:
        save_tokenizer(bpe, out)
    if origin is not None:
        (out / ORIGIN).write_text(json.dumps(asdict(origin), indent=1) + "\n")
    return out


@contextmanager
def _quiet() -> Iterator[None]:
    """No ``transformers`` progress bar (a sweep's output stays one line per event)."""
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def read_origin(folder: Path | str) -> Origin | None:
    """The :class:`Origin` of an exported folder, or ``None`` when it was not exported from a sweep."""
    path = Path(folder) / ORIGIN
    return Origin(**json.loads(path.read_text())) if path.is_file() else None


def export_run(
    tracking_uri: str, sweep: str, wanted: str, out: Path | str, cache_dir: Path | None = None
) -> tuple[Path, Origin]:
    """Export the trial ``wanted`` (run id, run key, run name or a one-seed combination label) of
    ``sweep`` in the store at ``tracking_uri``: from the checkpoint where the trial wrote it, else
    from the run's ``checkpoint/`` artifacts (``cache_dir``: :func:`export_trial`'s). Raises
    ``LookupError`` naming what exists."""
    from mlflow import MlflowClient

    from ..analysis.store import find_parent_run, find_trial_run
    from ..record import CHECKPOINT_ARTIFACTS, CHECKPOINT_PATH

    client = MlflowClient(tracking_uri)
    run = find_trial_run(client, find_parent_run(client, sweep), wanted)
    origin = Origin(tracking_uri, run.info.run_id, sweep, run.info.run_name)
    written = run.data.tags.get(CHECKPOINT_PATH)
    if written and Path(written).is_file() and (Path(written).parent / RECORD).is_file():
        return export_trial(Path(written).parent, out, origin, cache_dir), origin
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, CHECKPOINT_ARTIFACTS)}
    if f"{CHECKPOINT_ARTIFACTS}/{CHECKPOINT}" not in artifacts:
        where = f"its checkpoint {written} is gone" if written else "it wrote no checkpoint"
        raise LookupError(f"trial {run.info.run_name!r} cannot be exported: {where}, and its run holds no copy")
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run.info.run_id, CHECKPOINT_ARTIFACTS, tmp)
        return export_trial(local, out, origin, cache_dir), origin


def log_models(tracking_uri: str, parent_run_id: str) -> tuple[int, list[str]]:
    """Log every finished trial of a sweep as a Hugging Face folder under its run's ``model/``
    artifacts (tag ``miras.hf_model``: ``model``), where its checkpoint is on this machine and at
    most the checkpoint artifact limit (50 MiB); a trial that cannot be logged gets the tag's reason
    instead. Trials already tagged are skipped, so a resumed sweep logs each model once.
    Returns how many were logged and the reasons of those that were not."""
    from mlflow import MlflowClient

    from ..analysis.store import child_runs
    from ..record import CHECKPOINT_PATH, FINISHED, HF_MODEL, HF_MODEL_ARTIFACTS, STATUS, SWEEP
    from ..search.tracking import CHECKPOINT_LIMIT

    client = MlflowClient(tracking_uri)
    parent = client.get_run(parent_run_id)
    logged, skipped = 0, []
    for run in child_runs(client, parent):
        tags = run.data.tags
        if tags.get(STATUS) != FINISHED or HF_MODEL in tags:
            continue
        checkpoint = Path(tags.get(CHECKPOINT_PATH, ""))
        if not checkpoint.is_file():
            reason = f"not logged: no checkpoint on this machine ({checkpoint}); `miras export` writes it where it is"
        elif checkpoint.stat().st_size > CHECKPOINT_LIMIT:
            size = checkpoint.stat().st_size / 2**20
            reason = f"not logged: checkpoint {size:.0f} MiB > {CHECKPOINT_LIMIT >> 20} MiB; `miras export` writes it"
        else:
            origin = Origin(tracking_uri, run.info.run_id, tags.get(SWEEP, ""), run.info.run_name)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    folder = export_trial(checkpoint.parent, tmp, origin)
                    client.log_artifacts(run.info.run_id, str(folder), HF_MODEL_ARTIFACTS)
            except Exception as error:  # one trial's model (a plugin gone, its corpus gone) stops no other
                reason = f"not logged: {type(error).__name__}: {error}"
            else:
                client.set_tag(run.info.run_id, HF_MODEL, HF_MODEL_ARTIFACTS)
                logged += 1
                continue
        client.set_tag(run.info.run_id, HF_MODEL, reason)
        skipped.append(f"{run.info.run_name}: {reason}")
    return logged, skipped
