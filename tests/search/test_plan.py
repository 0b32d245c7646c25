"""Trial expansion, names, run keys, MLflow params and the per-cell search: no Ray cluster, no training."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import optuna
import pytest
from ray.tune.search import Searcher

from miras.config import validate_config
from miras.models import LanguageModel, architecture
from miras.search.callbacks import ProgressCallback
from miras.search.params import NO_AXIS, trial_params
from miras.search.plan import Plan, Trial
from miras.search.searcher import CellSearch, retry_points, tried
from miras.search.trainable import OBJECTIVE

from .conftest import TINY


def plan(**sections) -> Plan:
    return Plan(validate_config({"name": "p", **TINY, **sections}))


def test_presets_times_seeds_at_training_lr():
    trials = plan(space={"presets": ["deltanet", "transformer"]}, seeds=[0, 1]).fixed_trials()
    assert [t.name for t in trials] == ["deltanet-s0", "deltanet-s1", "transformer-s0", "transformer-s1"]
    assert {t.lr for t in trials} == {1e-3}
    assert len({t.key for t in trials}) == 4


def test_a_list_of_rates_is_a_grid_named_by_rate():
    p = plan(space={"presets": ["gla"]}, search={"lr": [3e-3, 1e-2]})
    assert [t.name for t in p.fixed_trials()] == ["gla-s0-lr0.003", "gla-s0-lr0.01"]
    assert p.total == 2 and p.searched_cells == []


def test_a_range_leaves_the_rates_to_the_searcher():
    p = plan(space={"presets": ["gla"]}, seeds=[0, 1], search={"lr": {"low": 1e-4, "high": 1e-2}})
    assert p.fixed_trials() == [] and p.total == 8 and p.budget == 4
    assert [entry["search"]["trials"] for entry in p.listing()] == [4, 4]


def test_a_width_ladder_names_each_width():
    p = plan(model={**TINY["model"], "d_model": [16, 32]}, space={"presets": ["gla"]})
    assert [t.name for t in p.fixed_trials()] == ["gla-d16-s0", "gla-d32-s0"]
    assert p.describe() == "1 combination x 2 widths x 1 seed = 2 trials"


def test_run_key_is_stable_and_depends_on_the_resolved_config():
    def key(**sections):
        return plan(space={"presets": ["gla"]}, **sections).fixed_trials()[0].key

    assert key() == key()
    assert key(training={**TINY["training"], "steps": 11}) != key()
    assert key(seeds=[1]) != key()
    assert key(model={**TINY["model"], "d_model": 32}) != key()


def test_run_key_fills_in_default_params_of_grid_points():
    def key(bias):
        grid = {"memory": ["linear"], "bias": [bias], "retention": ["none"], "algorithm": ["gd"]}
        return plan(space={"grid": grid}).fixed_trials()[0].key

    assert key("lp") == key({"name": "lp", "params": {"p": 3}})  # p = 3 is lp's default
    assert key("lp") != key({"name": "lp", "params": {"p": 4}})


def test_trial_config_round_trips():
    grid = {"memory": ["mlp"], "bias": ["l2"], "retention": ["l2"], "algorithm": ["gd"]}
    for trial in plan(space={"presets": ["gla"], "grid": grid}).fixed_trials():
        assert Trial.from_config(trial.to_config()) == trial


def test_params_name_every_axis_option_and_setting():
    p = plan(space={"presets": ["titans", "transformer"]}, search={"lr": [3e-3]})
    titans, transformer = (trial_params(p.config, t) for t in p.fixed_trials())
    assert titans["model"] == "titans"
    axes = ("memory", "bias", "retention", "algorithm")
    assert [titans[axis] for axis in axes] == ["mlp", "l2", "l2", "momentum"]
    assert titans["memory.depth"] == "2" and titans["algorithm.batch_size"] == "16"
    assert titans["lr"] == titans["training.lr"] == "0.003" and titans["seed"] == "0"
    assert titans["task"] == "mqar" and titans["task.num_kv_pairs"] == "4"
    assert titans["model.d_model"] == "16" and titans["model.swa_window"] == "null"
    assert transformer["model"] == "transformer"
    assert all(transformer[axis] == NO_AXIS for axis in axes)
    assert not any(k.startswith("memory.") for k in transformer)


def test_grid_points_are_logged_as_grid():
    grid = {"memory": ["linear"], "bias": ["l2"], "retention": ["none"], "algorithm": ["gd"]}
    p = plan(space={"grid": grid})
    params = trial_params(p.config, p.fixed_trials()[0])
    assert params["model"] == "grid" and params["algorithm.grad_at"] == "previous"


@pytest.fixture
def storage(tmp_path):
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")


def test_retry_points_reruns_unfinished_values_and_frees_stale_trials(storage):
    p = plan(space={"presets": ["gla"]}, search={"lr": {"low": 1e-4, "high": 1e-2}})
    cell = p.cells[0]
    study = optuna.create_study(study_name="gla-s0", storage=storage, direction="maximize")
    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    finished, killed = study.ask(space), study.ask(space)
    study.tell(finished, 0.5)
    done = {p.trial(cell, {"training.lr": finished.params["lr"]}).key}
    assert retry_points(storage, tried(storage, "gla-s0"), p, cell, done) == [killed.params]
    assert study.trials[1].state == optuna.trial.TrialState.FAIL
    assert tried(storage, "no-such-study") == []


def test_a_resumed_search_retries_unfinished_rates_then_samples_new_ones(tmp_path):
    p = plan(space={"presets": ["gla"]}, search={"lr": {"low": 1e-4, "high": 1e-2}, "trials_per_combination": 4})
    cell, url = p.cells[0], f"sqlite:///{tmp_path / 'optuna.db'}"

    def rate(config):
        return config["trial"]["lr"]

    first = CellSearch(p, {cell: 4}, url, set(), "max")
    finished, interrupted = rate(first.suggest("a")), rate(first.suggest("b"))
    first.on_trial_complete("a", {OBJECTIVE: 0.5, "training_iteration": 1})
    # The driver is killed here: "b" never completes, "c" and "d" were never asked for.
    resumed = CellSearch(p, {cell: 3}, url, {p.trial(cell, {"training.lr": finished}).key}, "max")
    again, *new = (rate(resumed.suggest(trial_id)) for trial_id in ("e", "f", "g"))
    assert again == interrupted
    assert len({finished, interrupted, *new}) == 4  # no rate (so no run key) is drawn twice
    assert resumed.suggest("h") == Searcher.FINISHED


def test_progress_lines_give_the_time_left(monkeypatch):
    clock = iter([0.0, 0.0, 41.0, 60.0, 200.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    trials = plan(space={"presets": ["deltanet"]}, seeds=[0, 1, 2]).fixed_trials()
    tune = [SimpleNamespace(trial_id=str(i), config={"trial": t.to_config()}) for i, t in enumerate(trials)]
    out = io.StringIO()
    progress = ProgressCallback(total=3, metric="test_accuracy", stream=out)
    progress.on_trial_start(0, [], tune[0])
    progress.on_trial_start(0, [], tune[1])
    evaluation = {"miras": {"eval": {"step": 250, "metrics": {"test_accuracy": 0.8125, "test_loss": 1.0}}}}
    progress.on_trial_result(0, [], tune[0], evaluation)
    progress._end(tune[0], "finished", "best test_accuracy 0.9")
    progress._end(tune[1], "finished", "best test_accuracy 0.8")
    lines = out.getvalue().splitlines()
    assert lines[2] == "  eval      deltanet-s0  step 250: test_accuracy 0.8125 (41 s in)"
    assert lines[3] == "  [1/3] finished  deltanet-s0  best test_accuracy 0.9  (60.0 s; about 2.0 min left)"
    assert lines[4].endswith("(200.0 s; about 1.7 min left)")


def test_an_ablation_runs_its_base_and_one_variant_per_change():
    ablation = {"base": "yaad", "swap": {"retention": ["none"], "bias": ["l2", {"name": "lp", "params": {"p": 2.0}}]}}
    p = plan(space={"presets": ["yaad", "transformer"], "ablations": [{**ablation, "gates": {"delta": "constant"}}]})
    assert [cell.combination for cell in p.cells] == [
        "yaad",
        "transformer",
        "yaad -retention=none",
        "yaad -bias=l2",
        "yaad -bias=lp[p=2]",
        "yaad -gate.delta=constant",
    ]
    trials = p.fixed_trials()
    assert len({t.key for t in trials}) == len(trials)  # a gate kind alone changes the run key
    assert all(Trial.from_config(t.to_config()) == t for t in trials)
    params = {t.cell.combination: trial_params(p.config, t) for t in trials}
    assert (
        params["yaad -retention=none"].items()
        >= {
            "model": "ablation",
            "ablation.base": "yaad",
            "ablation.change": "retention=none",
            "retention": "none",
            "bias": "huber",
            "memory": "mlp",
        }.items()
    )
    assert params["yaad -bias=lp[p=2]"]["bias.p"] == "2.0"
    assert "ablation.base" not in params["yaad"]


CONDITIONAL = {"params": {"bias.p": {"low": 1.0, "high": 4.0}, "training.weight_decay": [0.0, 0.1]}}


def test_each_combination_searches_the_settings_it_has():
    p = plan(
        space={"presets": ["moneta", "transformer"]}, seeds=[0, 1], search=CONDITIONAL | {"trials_per_combination": 3}
    )
    moneta, transformer = p.cells[0], p.cells[2]
    assert [d.path for d in p.dimensions(moneta)] == ["bias.p", "training.weight_decay"]
    assert [d.path for d in p.dimensions(transformer)] == ["training.weight_decay"]
    assert p.searched_cells == p.cells[:2]  # moneta samples (a range); the transformer runs its list
    assert [t.name for t in p.fixed_trials()] == [
        f"transformer-s{seed}-lr0.001-training.weight_decay{wd}" for seed in (0, 1) for wd in ("0", "0.1")
    ]
    assert p.total == 2 * 3 + 4


def test_searched_values_reach_the_trial_its_key_and_its_params():
    p = plan(space={"presets": ["moneta"]}, search=CONDITIONAL)
    cell = p.cells[0]
    trial = p.trial(cell, {"training.lr": 3e-3, "bias.p": 2.5, "training.weight_decay": 0.1})
    assert (trial.lr, trial.values) == (3e-3, {"bias.p": 2.5, "training.weight_decay": 0.1})
    assert trial.name == "moneta-s0-lr0.003-bias.p2.5-training.weight_decay0.1"
    assert Trial.from_config(trial.to_config()) == trial
    assert trial.key != p.trial(cell, {"training.lr": 3e-3, "bias.p": 3.5, "training.weight_decay": 0.1}).key
    settings = p.settings(cell, trial.lr, trial.values)
    assert settings.training.weight_decay == 0.1 and settings.training.lr == 3e-3
    assert settings.spec().bias.params == {"p": 2.5, "smooth": "sqrt"}  # merged into moneta's own params
    params = trial_params(p.config, trial)
    assert (params["bias.p"], params["bias.smooth"], params["training.weight_decay"]) == ("2.5", "sqrt", "0.1")
    unsearched = plan(space={"presets": ["moneta"]}).fixed_trials()[0]
    assert "axis_params" not in plan(space={"presets": ["moneta"]}).resolved(unsearched.cell, unsearched.lr)


def test_a_cell_search_samples_only_its_settings_in_their_ranges(tmp_path):
    p = plan(space={"presets": ["moneta", "transformer"]}, search=CONDITIONAL | {"trials_per_combination": 3})
    moneta = p.cells[0]
    fixed = p.fixed_trials()
    search = CellSearch(p, {moneta: 3}, f"sqlite:///{tmp_path / 'optuna.db'}", set(), "max", fixed=fixed)
    first = [Trial.from_config(search.suggest(str(i))["trial"]) for i in range(len(fixed))]
    assert first == fixed  # the transformer's list first
    sampled = [Trial.from_config(search.suggest(f"m{i}")["trial"]) for i in range(3)]
    assert all(set(t.values) == {"bias.p", "training.weight_decay"} for t in sampled)
    assert all(1.0 <= t.values["bias.p"] <= 4.0 and t.values["training.weight_decay"] in (0.0, 0.1) for t in sampled)
    assert all(t.lr == 1e-3 for t in sampled)  # the learning rate is not searched here
    assert search.suggest("end") == Searcher.FINISHED


def test_cells_of_specs_with_params_can_key_a_search_budget():
    grid = {
        "memory": ["linear"],
        "bias": [{"name": "lp", "params": {"p": 3.0}}],
        "retention": ["none"],
        "algorithm": ["gd"],
    }
    p = plan(space={"grid": grid, "ablations": [{"base": "yaad", "gates": {"delta": "constant"}}]}, search={})
    budget = {cell: p.budget for cell in p.searched_cells}  # MirasSpec and Variant hold dicts
    assert len(budget) == 3 and sum(budget.values()) == p.total


@pytest.mark.parametrize(("budget", "target"), [("state_size", 4096), ("params", 60_000)])
def test_matched_widths_meet_the_budget_by_the_models_own_count(budget, target):
    presets = ["transformer", "deltanet", "gated_deltanet", "titans", "moneta"]
    model = {**TINY["model"], "n_heads": 2, "match": {budget: target, "tolerance": 0.1}}
    p = plan(space={"presets": presets}, model=model)
    assert set(p.matched) == set(presets)
    vocab, length = TINY["task"]["vocab_size"], TINY["task"]["seq_len"]
    for cell in p.cells:
        config = p.config.model.at(cell.d_model)
        built = LanguageModel(architecture(cell.architecture), vocab, config)
        count = built.num_params() if budget == "params" else built.state_size(length)
        assert cell.d_model % 2 == 0 and abs(count / target - 1) <= 0.1, (cell.combination, cell.d_model, count)
        assert p.matched[cell.combination].value == count
    widths = {cell.combination: cell.d_model for cell in p.cells}
    assert len(set(widths.values())) > 1  # the budget, not the width, is what is equal
    assert "d_model matched to" in p.describe()
