"""Synthetic sweeps with planted effects, written with the real MLflow client in the sweep runner's layout.

``ablation`` (MQAR, accuracy, maximised): a 2 x 2 x 2 grid (memory x bias x retention, gd) plus the
transformer baseline, seeds 0-2, learning rates 1e-3 and 3e-3. At the best learning rate a trial's
``best_test_accuracy`` is exactly :func:`planted_accuracy`; the other learning rate scores 0.2 less.
The best lr is 1e-3 for the mlp memory and 3e-3 otherwise. Failures: every trial of
``mlp-huber-l2-gd`` seed 2 diverged, and ``lin-l2-none-gd`` seed 1 at lr 1e-3 (its worse lr) hit OOM.
One more run, an interrupted trial that a resume discarded, is deleted and must not be read.
Params are written as the runner writes them: strings as they are, anything else as JSON.

``scaling`` (LM, loss, minimised): presets deltanet and moneta at d_model 32, 64, 128, seeds 0-1, one
lr; ``best_val_loss`` is exactly ``SCALE[preset] * n_params ** EXPONENT``.

``broken``: two trials that failed before logging anything.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

ABLATION, SCALING, BROKEN = "ablation", "scaling", "broken"
SEEDS = (0, 1, 2)
LRS = (1e-3, 3e-3)
MEMORIES = {"lin": ("linear", {}), "mlp": ("mlp", {"depth": 2, "expansion": 4})}
BIASES = {"l2": ("l2", {}), "huber": ("huber", {"mode": "token", "smooth": "none"})}
RETENTIONS = {"none": ("none", {}), "l2": ("l2", {})}
GD = ("gd", {"batch_size": 1, "grad_at": "previous", "steps": 1, "lag_token": False})
HUBER_EFFECT = 0.10
STEPS = (0, 50, 100)

DIVERGED = ("mlp-huber-l2-gd", 2)
OOM = ("lin-l2-none-gd", 1, 1e-3)

EXPONENT = -0.2
SCALE = {"deltanet": 8.0, "moneta": 6.0}
D_MODELS = (32, 64, 128)


def planted_accuracy(memory: str, bias: str, retention: str, seed: int) -> float:
    """The best accuracy of a grid trial: +0.10 for huber, +0.05 for mlp, +0.02 (linear) or +0.04 (mlp)
    for l2 retention, +0.01 per seed."""
    retention_gain = (0.02 if memory == "lin" else 0.04) if retention == "l2" else 0.0
    return 0.5 + HUBER_EFFECT * (bias == "huber") + 0.05 * (memory == "mlp") + retention_gain + 0.01 * seed


def best_lr(memory: str) -> float:
    return 1e-3 if memory == "mlp" else 3e-3


class Writer:
    """Writes a sweep's parent run and its trial runs in the runner's layout."""

    def __init__(self, client: MlflowClient, root: Path, name: str, config: dict) -> None:
        self.client, self.name = client, name
        location = (root / "artifacts" / name).as_uri()
        self.experiment = client.create_experiment(name, artifact_location=location)
        self.clock = int(time.time() * 1000)
        parent = client.create_run(
            self.experiment, run_name=name, tags={"miras.role": "sweep", "miras.sweep": name}, start_time=self.tick()
        )
        self.parent = parent.info.run_id
        folder = root / f"{name}-parent"
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        (folder / "trials.json").write_text(json.dumps([]))
        client.log_artifacts(self.parent, str(folder))

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def trial(
        self,
        label: str,
        params: dict[str, object],
        status: str,
        history: dict[str, list[float]],
        final: dict[str, float],
        reason: str | None = None,
    ) -> str:
        """One trial run: tags, params, per-step metrics (``history``: name -> value per STEPS) and final metrics."""
        tags = {
            "mlflow.parentRunId": self.parent,
            "miras.role": "trial",
            "miras.sweep": self.name,
            "miras.run_key": f"{label}-{params['seed']}-{params['lr']}",
            "miras.combination": label,
            "miras.status": status,
            **({"miras.reason": reason} if reason else {}),
        }
        run = self.client.create_run(self.experiment, run_name=label, tags=tags, start_time=self.tick())
        metrics = [
            Metric(name, value, self.clock + step, step)
            for name, values in history.items()
            for step, value in zip(STEPS, values, strict=False)
        ]
        metrics += [Metric(name, value, self.clock + 1000, STEPS[-1]) for name, value in final.items()]
        self.client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, v if isinstance(v, str) else json.dumps(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        self.client.set_terminated(run.info.run_id, status="FAILED" if status == "failed" else "FINISHED")
        return run.info.run_id

    def close(self) -> None:
        self.client.set_terminated(self.parent)


def _axis_params(axis: str, entry: tuple[str, dict[str, object]]) -> dict[str, object]:
    name, params = entry
    return {axis: name, **{f"{axis}.{k}": v for k, v in params.items()}}


MQAR = {"task": "mqar", "task.seq_len": 64, "task.num_kv_pairs": 4, "task.vocab_size": 256}
SMALL = {
    "model.d_model": 32,
    "model.n_layers": 2,
    "model.n_heads": 2,
    "model.swa_window": None,
    "training.steps": 100,
    "training.batch_size": 8,
}


def write_ablation(client: MlflowClient, root: Path) -> None:
    config = {"name": ABLATION, "task": {"name": "mqar"}, "search": {"lr": list(LRS)}, "seeds": list(SEEDS)}
    writer = Writer(client, root, ABLATION, config)
    for (mem, bias, ret), seed, lr in itertools.product(itertools.product(MEMORIES, BIASES, RETENTIONS), SEEDS, LRS):
        label = f"{mem}-{bias}-{ret}-gd"
        params = {
            "model": "grid",
            **_axis_params("memory", MEMORIES[mem]),
            **_axis_params("bias", BIASES[bias]),
            **_axis_params("retention", RETENTIONS[ret]),
            **_axis_params("algorithm", GD),
            "seed": seed,
            "lr": lr,
            **MQAR,
            **SMALL,
        }
        best = planted_accuracy(mem, bias, ret, seed) - (0.0 if lr == best_lr(mem) else 0.2)
        costs = {
            "n_params": 20_000 if mem == "mlp" else 10_000,
            "state_size": 8192 if mem == "mlp" else 2048,
            "flops_per_token": 40_000 if mem == "mlp" else 20_000,
            "tokens_per_second": 5_000.0 if mem == "mlp" else 9_000.0,
            "peak_memory_mb": 100.0,
            "wall_seconds": 10.0,
        }
        if (label, seed, lr) == (*OOM[:2], best_lr(mem)):  # an interrupted run a resume discarded
            discarded = writer.trial(label, params, "interrupted", {}, {}, reason="the sweep was interrupted")
            client.delete_run(discarded)
        if (label, seed) == DIVERGED:
            history = {"train_loss": [5.0, float("nan")]}
            writer.trial(label, params, "diverged", history, {}, reason="non-finite loss at step 50")
        elif (label, seed, lr) == OOM:
            writer.trial(label, params, "oom", {}, {}, reason="CUDA out of memory")
        else:
            accuracy = [best - 0.3, best, best - 0.01]
            history = {"test_accuracy": accuracy, "test_accuracy_kv4": accuracy, "train_loss": [5.0, 2.0, 1.5]}
            writer.trial(label, params, "finished", history, {**costs, "best_test_accuracy": best})
    for seed, lr in itertools.product(SEEDS, LRS):
        params = {"model": "transformer", "memory": "-", "bias": "-", "retention": "-", "algorithm": "-"}
        params |= {"seed": seed, "lr": lr, **MQAR, **SMALL}
        best = 0.9 + 0.01 * seed - (0.0 if lr == 1e-3 else 0.2)
        history = {"test_accuracy": [0.3, best, best], "test_accuracy_kv4": [0.3, best, best], "train_loss": [5, 1, 1]}
        final = {"n_params": 15_000, "state_size": 16_384, "flops_per_token": 30_000, "tokens_per_second": 7_000.0}
        writer.trial("transformer", params, "finished", history, {**final, "best_test_accuracy": best})
    writer.close()


def scaling_params(d_model: int) -> int:
    return 12 * d_model**2


def planted_loss(preset: str, d_model: int) -> float:
    return SCALE[preset] * scaling_params(d_model) ** EXPONENT


def write_scaling(client: MlflowClient, root: Path) -> None:
    config = {"name": SCALING, "task": {"name": "lm"}, "seeds": [0, 1]}
    writer = Writer(client, root, SCALING, config)
    for preset, d_model, seed in itertools.product(SCALE, D_MODELS, (0, 1)):
        memory = ("mlp", {"depth": 2, "expansion": 4}) if preset == "moneta" else ("linear", {})
        params = {
            "model": preset,
            **_axis_params("memory", memory),
            "bias": "lp" if preset == "moneta" else "l2",
            "retention": "lq" if preset == "moneta" else "none",
            "algorithm": "gd",
            "seed": seed,
            "lr": 1e-3,
            "task": "lm",
            "task.seq_len": 128,
            "model.d_model": d_model,
            "model.n_layers": 2,
            "training.steps": 100,
            "training.batch_size": 8,
        }
        loss = planted_loss(preset, d_model)
        history = {"val_loss": [loss + 2, loss + 0.5, loss], "train_loss": [loss + 2.5, loss + 0.6, loss]}
        final = {
            "n_params": scaling_params(d_model),
            "state_size": (8 if preset == "moneta" else 2) * d_model**2,
            "flops_per_token": 2 * scaling_params(d_model),
            "tokens_per_second": 1e6 / d_model,
            "best_val_loss": loss,
            "val_perplexity": 2.718281828**loss,
        }
        writer.trial(preset, params, "finished", history, final)
    writer.close()


def write_broken(client: MlflowClient, root: Path) -> None:
    """A sweep whose every trial failed before logging a metric."""
    writer = Writer(client, root, BROKEN, {"name": BROKEN, "task": {"name": "mqar"}})
    for seed in (0, 1):
        params = {"model": "deltanet", "memory": "linear", "bias": "l2", "retention": "none", "algorithm": "gd"}
        writer.trial("deltanet", params | {"seed": seed, "lr": 1e-3, **MQAR}, "failed", {}, {}, reason="ValueError: x")
    writer.close()


def make_store(root: Path) -> str:
    """Write the three sweeps into a fresh sqlite store under ``root``; returns its tracking URI."""
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    write_ablation(client, root)
    write_scaling(client, root)
    write_broken(client, root)
    return uri
