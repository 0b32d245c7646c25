"""lm-evaluation-harness on an exported model: the shipped local task gives the log-likelihoods the
project computes itself, ``miras eval`` prints and logs them, and a task that cannot load says why."""

from __future__ import annotations

import io
import json
from pathlib import Path
from unittest import mock

import pytest
import torch

from miras.cli import main
from miras.config.schema import ModelConfig
from miras.evaluation import cloze
from miras.models import LanguageModel, architecture
from miras.runners.tasks.corpus import load_corpus
from miras.runners.tasks.tokenizer import ByteBPE, train_bpe

pytest.importorskip("lm_eval")
hf = pytest.importorskip("miras.hf")
harness = pytest.importorskip("miras.evaluation.harness")

LIMIT = 12


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, LanguageModel, ByteBPE]:
    """A tiny fp64 Gated DeltaNet over a BPE trained on three plays, exported as miras export does."""
    torch.manual_seed(0)
    bpe = ByteBPE(train_bpe([doc.text for doc in load_corpus("shakespeare").train[:3]], 300), "eval-test")
    model = LanguageModel(architecture("gated_deltanet"), bpe.vocab_size, ModelConfig(d_model=16, n_heads=2))
    model = model.double().eval()
    folder = tmp_path_factory.mktemp("exported")
    ids = {"eos_token_id": bpe.eot_id, "bos_token_id": bpe.eot_id, "pad_token_id": bpe.eot_id}
    hf.to_hf(model, **ids).save_pretrained(folder)
    hf.save_tokenizer(bpe, folder)
    return folder, model, bpe


def test_the_shipped_items_are_what_the_generator_writes():
    shipped = [json.loads(line) for line in cloze.DATA.read_text().splitlines()]
    assert shipped == cloze.cloze_items(load_corpus("shakespeare").held_out)
    assert len(shipped) == cloze.ITEMS and all(len(item["choices"]) == cloze.CHOICES for item in shipped)
    for item in shipped:
        answer = item["choices"][item["label"]].lower()
        assert [choice.lower() for choice in item["choices"]].count(answer) == 1, item


def test_lm_eval_scores_the_local_task_as_the_project_does(exported):
    folder, model, bpe = exported
    evaluation = harness.evaluate(folder, [cloze.TASK], limit=LIMIT)
    items = [json.loads(line) for line in cloze.DATA.read_text().splitlines()][:LIMIT]
    with torch.no_grad():
        direct = [cloze.choice_logliks(model, bpe, item) for item in items]
    measured = evaluation.logliks[cloze.TASK]
    assert len(measured) == LIMIT
    for got, want in zip(measured, direct, strict=True):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=0, atol=1e-6)
    labels = torch.tensor([item["label"] for item in items])
    scores = torch.tensor(direct)
    lengths = torch.tensor([[len(choice) for choice in item["choices"]] for item in items])
    acc = (scores.argmax(1) == labels).double().mean().item()
    acc_norm = ((scores / lengths).argmax(1) == labels).double().mean().item()
    assert evaluation.metrics[cloze.TASK]["acc"] == pytest.approx(acc, abs=1e-9)
    assert evaluation.metrics[cloze.TASK]["acc_norm"] == pytest.approx(acc_norm, abs=1e-9)


def test_miras_eval_prints_the_table_and_logs_to_the_origin_run(exported, tmp_path):
    from mlflow import MlflowClient

    folder, _, _ = exported
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("eval")).info.run_id
    origin = {"tracking_uri": uri, "run_id": run_id, "sweep": "s", "trial": "t"}
    (folder / hf.export.ORIGIN).write_text(json.dumps(origin))
    stdout = io.StringIO()
    with mock.patch("sys.stdout", stdout):
        code = main(["eval", str(folder), "--tasks", cloze.TASK, "--limit", "4"])
    assert code == 0
    assert cloze.TASK in stdout.getvalue() and "acc_norm" in stdout.getvalue() and run_id in stdout.getvalue()
    metrics = client.get_run(run_id).data.metrics
    assert 0 <= metrics[f"eval/{cloze.TASK}/acc"] <= 1 and metrics[f"eval/{cloze.TASK}/sample_len"] == 4


def test_a_task_that_cannot_load_is_a_user_error_naming_the_local_tasks(exported, capsys):
    folder, _, _ = exported
    assert main(["eval", str(folder), "--tasks", "no_such_task_anywhere", "--no-log"]) == 2
    err = capsys.readouterr().err
    assert "no_such_task_anywhere" in err and cloze.TASK in err


def test_a_folder_that_is_not_an_export_is_a_user_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--tasks", cloze.TASK]) == 2
    assert "not an exported model" in capsys.readouterr().err


def test_metric_names_keep_a_filter_other_than_none():
    assert harness._metric_name("acc,none") == "acc"
    assert harness._metric_name("exact_match,strict-match") == "exact_match/strict-match"


def test_an_unknown_run_id_is_a_user_error_and_creates_no_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["eval", "0" * 32, "--tasks", cloze.TASK]) == 2
    assert "in none of the stores looked at (none found)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
