"""Text sources read through ``datasets``, offline: a ``save_to_disk`` folder, JSON lines and Parquet
files written by the test, with ``task.dataset``'s split and column, validated before anything runs."""

from __future__ import annotations

import json

import pytest

from miras.config import ConfigError, load_config
from miras.config.schema import LmTask, ModelConfig, TrainingConfig
from miras.runners.tasks import build_task, corpus
from miras.runners.trial import TrialConfig, run_trial
from miras.search.plan import Plan

datasets = pytest.importorskip("datasets")

WORDS = [
    *("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"),
    *("while", "seven", "wizards", "quietly", "hum", "old", "tunes"),
]


def sentences(count: int, offset: int = 0) -> list[str]:
    """``count`` distinct sentences of 40 words, deterministic."""
    return [" ".join(WORDS[(i * 7 + j * 3 + offset) % len(WORDS)] for j in range(40)) + f" {i}." for i in range(count)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A ``DatasetDict`` saved to disk: splits ``train`` (30 rows) and ``dev`` (4), text in ``body``."""
    folder = tmp_path_factory.mktemp("saved") / "corpus"
    splits = {"train": sentences(30), "dev": sentences(4, offset=5)}
    columns = {name: {"body": rows, "id": list(range(len(rows)))} for name, rows in splits.items()}
    dataset = datasets.DatasetDict({name: datasets.Dataset.from_dict(data) for name, data in columns.items()})
    dataset.save_to_disk(str(folder))
    return folder, splits


def test_a_saved_dataset_gives_the_split_and_column_asked_for(saved, tmp_path):
    folder, splits = saved
    options = {"text_column": "body", "held_out_split": "dev"}
    got = corpus.load_corpus(str(folder), options, tmp_path)
    assert [d.text for d in got.train] == splits["train"] and [d.text for d in got.held_out] == splits["dev"]


def test_json_lines_without_a_held_out_split_hold_out_every_tenth_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = sentences(20)
    path.write_text("".join(json.dumps({"text": row}) + "\n" for row in rows))
    got = corpus.load_corpus(str(path), None, tmp_path / "cache")
    assert len(got.held_out) == 2 and len(got.train) == 18
    assert sorted(d.text for d in got.train + got.held_out) == sorted(rows)
    assert (tmp_path / "cache" / "datasets").is_dir()  # datasets' cache is inside miras's


def test_a_parquet_file_trains_a_model_a_few_steps(tmp_path):
    path = tmp_path / "rows.parquet"
    datasets.Dataset.from_dict({"content": sentences(40)}).to_parquet(str(path))
    task = LmTask(source=str(path), vocab_size=256, seq_len=16, eval_windows=4, dataset={"text_column": "content"})
    config = TrialConfig(
        task=task,
        model=ModelConfig(d_model=16, n_layers=1, n_heads=2, gate_rank=4),
        training=TrainingConfig(steps=6, batch_size=4, warmup_steps=1, eval_every=6, checkpoint_every=None),
        architecture="gated_deltanet",
        cache_dir=tmp_path / "cache",
    )
    result = run_trial(config, progress=False)
    assert result.status == "finished", result.reason
    assert result.losses[-1] < result.losses[0] and result.final["val_loss"] > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"text_column": "text"}, r"no column 'text' \(columns: body, id\): set task.dataset.text_column"),
        ({"text_column": "body", "split": "training"}, r"no split 'training' \(splits: train, dev\)"),
        ({"text_column": "body", "held_out_split": "test"}, r"no split 'test'"),
    ],
)
def test_a_missing_split_or_column_is_named_with_what_there_is(saved, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        build_task(LmTask(source=str(saved[0]), vocab_size=256, seq_len=16, dataset=options), tmp_path)


def write_config(tmp_path, task: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: ds\ntask: {task}\nspace: {{presets: [deltanet]}}\n")
    return path


def test_dataset_options_are_validated_against_the_source(saved, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(sentences(20)))
    bad = {
        f"{{name: lm, source: {plain}, dataset: {{text_column: body}}}}": "applies to a source read by datasets",
        f"{{name: lm, source: {saved[0]}, dataset: {{config: wiki}}}}": "only an hf:<name> source has configurations",
        f"{{name: lm, source: {saved[0]}, dataset: {{column: body}}}}": "task.dataset.column",
    }
    for task, message in bad.items():
        with pytest.raises(ConfigError) as caught:
            load_config(write_config(tmp_path, task))
        assert message in str(caught.value), str(caught.value)
    good = load_config(write_config(tmp_path, f"{{name: lm, source: {saved[0]}, dataset: {{text_column: body}}}}"))
    assert good.task.dataset.text_column == "body"


def test_a_task_without_dataset_options_keeps_its_run_key(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(sentences(20)))
    config = load_config(write_config(tmp_path, f"{{name: lm, source: {plain}}}"))
    plan = Plan(config)
    cell = plan.cells[0]
    assert "dataset" not in plan.resolved(cell, config.training.lr)["task"]
    with_options = tmp_path / "rows.jsonl"
    with_options.write_text(json.dumps({"text": "a b"}) + "\n")
    config = load_config(write_config(tmp_path, f"{{name: lm, source: {with_options}, dataset: {{split: train}}}}"))
    plan = Plan(config)
    assert plan.resolved(plan.cells[0], config.training.lr)["task"]["dataset"]["split"] == "train"
