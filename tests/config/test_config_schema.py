"""The typed schema: defaults, derived values, relative paths and the expansion of the space."""

from __future__ import annotations

import pytest

from miras.config import (
    ConfigError,
    LrRange,
    MqarTask,
    NeedleTask,
    SweepConfig,
    format_problems,
    load_config,
    validate_config,
)
from miras.space import MirasSpec

MINIMAL = {"name": "t", "task": {"name": "mqar"}, "space": {"presets": ["deltanet"]}}


def grid(**axes):
    """A grid with one default entry per axis, overridden by ``axes``."""
    return {"memory": ["linear"], "bias": ["l2"], "retention": ["none"], "algorithm": ["gd"]} | axes


def test_minimal_config_gets_the_documented_defaults():
    config = validate_config(MINIMAL)
    assert isinstance(config.task, MqarTask)
    assert (config.task.vocab_size, config.task.seq_len, config.task.num_kv_pairs) == (8192, 64, 4)
    assert (config.model.d_model, config.model.n_heads, config.model.swa_window) == (64, 2, None)
    assert (config.training.steps, config.training.lr, config.training.precision) == (300, 1e-3, "fp32")
    assert config.seeds == [0] and config.search is None
    assert (config.resources.cpu, config.resources.gpu) == (1.0, 0.0)
    assert (config.tracking.experiment, config.tracking.uri) == (None, None)


def test_sections_are_not_shared_between_configs():
    first, second = validate_config(MINIMAL), validate_config(MINIMAL)
    first.training.steps = 1
    assert second.training.steps == 300


def test_yaml_scientific_notation_is_a_number(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ntask: {name: mqar}\nspace: {presets: [deltanet]}\ntraining: {lr: 3e-4}\n")
    assert load_config(path).training.lr == 3e-4


def test_task_is_chosen_by_name():
    config = validate_config(MINIMAL | {"task": {"name": "needle"}})
    assert isinstance(config.task, NeedleTask) and config.task.context_lengths == [256, 512]


def test_search_objective_defaults_to_the_tasks_primary_metric():
    with_search = MINIMAL | {"search": {}}
    assert validate_config(with_search).objective == ("test_accuracy", "max")
    lm = with_search | {"task": {"name": "lm"}}
    assert validate_config(lm).objective == ("val_loss", "min")
    custom = with_search | {"search": {"metric": "test_accuracy_4", "mode": "max"}}
    assert validate_config(custom).objective == ("test_accuracy_4", "max")


def test_search_trials_for_a_range_and_for_a_list():
    search = validate_config(MINIMAL | {"search": {}}).search
    assert search.lr == LrRange(low=1e-4, high=1e-2, log=True) and search.trials == 4
    assert search.searched == {"training.lr": search.lr}
    search = validate_config(MINIMAL | {"search": {"lr": [1e-3, 3e-4, 1e-4]}}).search
    assert search.searched == {"training.lr": [1e-3, 3e-4, 1e-4]}


def test_the_learning_rate_is_searched_when_given_or_when_nothing_else_is():
    params = {"training.weight_decay": [0.0, 0.1]}
    search = validate_config(MINIMAL | {"search": {"params": params}}).search
    assert search.searched == params  # lr stays at training.lr
    search = validate_config(MINIMAL | {"search": {"lr": [1e-3], "params": params}}).search
    assert search.searched == {"training.lr": [1e-3], **params}
    search = validate_config(MINIMAL | {"search": {"params": {"training.lr": [1e-3], **params}}}).search
    assert search.searched == {"training.lr": [1e-3], **params}


def test_relative_paths_are_resolved_against_the_config_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text.txt").write_text("hello")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "name: t\ntask: {name: lm, source: data/text.txt}\nspace: {presets: [deltanet]}\n"
        "tracking: {uri: 'sqlite:///runs/mlflow.db'}\n"
    )
    config = load_config(path)
    assert config.task.source == str(tmp_path / "data" / "text.txt")
    assert config.tracking.uri == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"


@pytest.mark.parametrize("uri", ["sqlite:////abs/mlflow.db", "http://host:5000"])
def test_absolute_tracking_uris_are_kept(uri):
    assert validate_config(MINIMAL | {"tracking": {"uri": uri}}).tracking.uri == uri


@pytest.mark.parametrize("gpu", [0, 0.25, 1, 2])
def test_gpu_may_be_a_fraction_or_whole(gpu):
    assert validate_config(MINIMAL | {"resources": {"gpu": gpu}}).resources.gpu == gpu


def test_combinations_are_presets_then_grid_without_duplicates():
    space = {
        "presets": ["titans", "deltanet", "titans"],
        "grid": grid(bias=["l2", "lp", {"name": "lp", "params": {"p": 3}}, {"name": "lp", "params": {"p": 4}}]),
    }
    combinations = validate_config(MINIMAL | {"space": space}).combinations()
    labels = [label for label, _ in combinations]
    assert labels == ["titans", "deltanet", "lin-l2-none-gd", "lin-lp-none-gd", "lin-lp[p=4]-none-gd"]
    assert combinations[0][1] == "titans"
    assert combinations[3][1] == MirasSpec.of("linear", "lp", "none", "gd")


def test_grid_expands_memory_slowest():
    space = {"grid": grid(memory=["linear", "mlp"], retention=["none", "l2"])}
    labels = [label for label, _ in validate_config(MINIMAL | {"space": space}).combinations()]
    assert labels == ["lin-l2-none-gd", "lin-l2-l2-gd", "mlp-l2-none-gd", "mlp-l2-l2-gd"]


def test_incompatible_grid_names_the_entries_once():
    space = {
        "grid": grid(
            memory=["linear", "mlp"],
            bias=["l2", "lp"],
            retention=["none", "l2"],
            algorithm=["gd", {"name": "implicit_gd", "params": {"grad_at": "decayed"}}],
        )
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(MINIMAL | {"space": space})
    closed_form = "implicit GD has a closed form only for a linear memory under the l2 bias (Longhorn)"
    assert caught.value.problems == [
        ("space.grid", f"bias[1]=lp x algorithm[1]=implicit_gd(grad_at=decayed): {closed_form}"),
        ("space.grid", f"memory[1]=mlp x algorithm[1]=implicit_gd(grad_at=decayed): {closed_form}"),
    ]


def test_a_single_incompatible_combination_names_the_axes_that_cause_it():
    space = {"grid": grid(memory=["mlp"], algorithm=["implicit_gd"])}
    with pytest.raises(ConfigError) as caught:
        validate_config(MINIMAL | {"space": space})
    assert [m.split(":")[0] for _, m in caught.value.problems] == ["memory[0]=mlp x algorithm[0]=implicit_gd"]


def test_swa_window_applies_to_hybrid_presets():
    config = validate_config(MINIMAL | {"space": {"presets": ["titans_h"]}, "model": {"swa_window": 64}})
    assert config.model.swa_window == 64


def test_problems_of_a_programmatic_config():
    config = SweepConfig.model_validate(MINIMAL | {"space": {"presets": ["nope"]}})
    assert [path for path, _ in config.problems()] == ["space.presets[0]"]


def test_format_problems_writes_one_line_per_problem():
    text = format_problems([("training.lr", "too\nlarge"), ("a.yaml", "not valid YAML")])
    assert text == "training.lr: too large\na.yaml: not valid YAML"


def test_attention_baselines_are_accepted_beside_presets():
    raw = {"name": "b", "task": {"name": "mqar"}, "space": {"presets": ["transformer", "swa"]}}
    config = validate_config(raw | {"model": {"swa_window": 32}})
    assert [label for label, _ in config.combinations()] == ["transformer", "swa"]
