"""``miras validate`` on malformed and valid sweep configs: exit codes, field paths and suggestions."""

from __future__ import annotations

import pytest

from miras.config import ConfigError, load_config

BASE = "name: t\ntask: {name: mqar}\nspace: {presets: [deltanet]}\n"
"""A minimal valid config; most cases add one faulty section to it."""


def case(name: str, text: str, path: str, *fragments: str):
    """A malformed config whose one problem is at ``path``, with ``fragments`` in its message."""
    return pytest.param(text, path, fragments, id=name)


MALFORMED = [
    # top level and name
    case("missing-name", "task: {name: mqar}\nspace: {presets: [deltanet]}\n", "name", "required field missing"),
    case("bad-name", BASE.replace("name: t", "name: my sweep"), "name", "should match pattern"),
    case("unknown-top-key", BASE + "seed: [0]\n", "seed", "unknown key 'seed'", "did you mean 'seeds'?"),
    case("section-not-mapping", BASE + "training: 5\n", "training", "expected a mapping, got a number"),
    # task
    case("unknown-task", BASE.replace("name: mqar", "name: mqr"), "task.name", "unknown task 'mqr'", "'mqar'?"),
    case("task-without-name", BASE.replace("name: mqar", "seq_len: 64"), "task.name", "required field missing"),
    case(
        "task-unknown-key",
        BASE.replace("name: mqar", "name: mqar, seq_length: 64"),
        "task.seq_length",
        "allowed keys here: name, vocab_size, seq_len",
        "did you mean 'seq_len'?",
    ),
    case("mqar-too-many-pairs", BASE.replace("name: mqar", "name: mqar, num_kv_pairs: 20"), "task.num_kv_pairs"),
    case("mqar-odd-seq-len", BASE.replace("name: mqar", "name: mqar, seq_len: 63"), "task.seq_len", "even"),
    case("needle-bad-kind", BASE.replace("name: mqar", "name: needle, kinds: [passkey, pin]"), "task.kinds[1]"),
    case("lm-missing-source", BASE.replace("name: mqar", "name: lm, source: no/such"), "task.source", "no such file"),
    case("lm-empty-hf-name", BASE.replace("name: mqar", "name: lm, source: 'hf:'"), "task.source", "dataset name"),
    # rules between fields hold for defaults too
    case("default-warmup-over-steps", BASE + "training: {steps: 10}\n", "training.warmup_steps", "20 when not set"),
    case(
        "test-pairs-over-seq-len",
        BASE.replace("name: mqar", "name: mqar, seq_len: 64, test_num_kv_pairs: [4, 32]"),
        "task.test_num_kv_pairs",
        "too many pairs: [32]",
    ),
    # numbers: finite, never booleans
    case("steps-boolean", BASE + "training: {steps: true}\n", "training.steps", "got the boolean true"),
    case("seed-boolean", BASE.replace("space:", "seeds: [true, 0]\nspace:"), "seeds[0]", "got the boolean true"),
    case("width-boolean", BASE + "model: {d_model: [32, false]}\n", "model.d_model[1]", "got the boolean false"),
    case("lr-infinite", BASE + "training: {lr: .inf}\n", "training.lr", "finite number"),
    case("cpu-infinite", BASE + "resources: {cpu: .inf}\n", "resources.cpu", "finite number"),
    case("lr-list-nan", BASE + "search: {lr: [1e-3, .nan]}\n", "search.lr[1]", "finite number"),
    # model and training
    case("d-model-too-small", BASE + "model: {d_model: 4, n_heads: 1}\n", "model.d_model", "equal to 8"),
    case("heads-not-dividing", BASE + "model: {d_model: 64, n_heads: 3}\n", "model.n_heads", "must divide"),
    case("swa-without-hybrid", BASE + "model: {swa_window: 128}\n", "model.swa_window", "no hybrid"),
    case("training-typo", BASE + "training: {lrr: 1e-3}\n", "training.lrr", "unknown key", "did you mean 'lr'?"),
    case("lr-zero", BASE + "training: {lr: 0}\n", "training.lr", "greater than 0"),
    case("lr-not-a-number", BASE + "training: {lr: fast}\n", "training.lr", "valid number", "'fast'"),
    case("warmup-over-steps", BASE + "training: {steps: 10, warmup_steps: 20}\n", "training.warmup_steps"),
    case("bad-precision", BASE + "training: {precision: fp16}\n", "training.precision", "'fp32' or 'bf16'"),
    # space
    case("empty-space", BASE.replace("{presets: [deltanet]}", "{}"), "space", "at least one of presets, grid and"),
    case(
        "unknown-preset",
        BASE.replace("[deltanet]", "[deltanet, titan]"),
        "space.presets[1]",
        "unknown preset 'titan'",
        "known: deltanet",
        "did you mean 'titans'?",
    ),
    case(
        "unknown-bias",
        "name: t\ntask: {name: mqar}\nspace:\n  grid: {memory: [linear], bias: [l2, dot, hubr], "
        "retention: [none], algorithm: [gd]}\n",
        "space.grid.bias[2]",
        "unknown bias option 'hubr'; registered: dot, huber",
        "did you mean 'huber'?",
    ),
    case(
        "lp-below-one",
        "name: t\ntask: {name: mqar}\nspace:\n  grid: {memory: [linear], bias: [l2, {name: lp, params: {p: 0.5}}], "
        "retention: [none], algorithm: [gd]}\n",
        "space.grid.bias[1].params.p",
        "greater than or equal to 1",
    ),
    case(
        "unknown-param",
        "name: t\ntask: {name: mqar}\nspace:\n  grid: {memory: [linear], bias: [{name: lp, params: {pp: 3}}], "
        "retention: [none], algorithm: [gd]}\n",
        "space.grid.bias[0].params.pp",
        "allowed keys here: p, smooth, eps",
        "did you mean 'p'?",
    ),
    case(
        "entry-typo",
        "name: t\ntask: {name: mqar}\nspace:\n  grid: {memory: [linear], bias: [{name: lp, parms: {}}], "
        "retention: [none], algorithm: [gd]}\n",
        "space.grid.bias[0].parms",
        "did you mean 'params'?",
    ),
    case(
        "grid-without-algorithm",
        "name: t\ntask: {name: mqar}\nspace:\n  grid: {memory: [linear], bias: [l2], retention: [none]}\n",
        "space.grid.algorithm",
        "required field missing",
    ),
    case(
        "incompatible-combination",
        "name: t\ntask: {name: mqar}\nspace:\n  grid: {memory: [linear, mlp], bias: [l2], retention: [none], "
        "algorithm: [implicit_gd]}\n",
        "space.grid",
        "memory[1]=mlp x algorithm[0]=implicit_gd: implicit GD has a closed form only for a linear memory",
    ),
    # ablations
    case(
        "ablation-unknown-base",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: yad, swap: {bias: [l2]}}]}"),
        "space.ablations[0].base",
        "unknown preset 'yad'",
        "did you mean 'yaad'?",
    ),
    case(
        "ablation-of-a-baseline",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: transformer, swap: {bias: [l2]}}]}"),
        "space.ablations[0].base",
        "attention baseline",
    ),
    case(
        "ablation-incompatible-swap",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: yaad, swap: {algorithm: [gd, implicit_gd]}}]}"),
        "space.ablations[0].swap.algorithm[1]",
        "implicit GD has a closed form only for a linear memory",
    ),
    case(
        "ablation-unknown-option",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: yaad, swap: {bias: [hubr]}}]}"),
        "space.ablations[0].swap.bias[0]",
        "'hubr'",
    ),
    case(
        "ablation-swap-to-the-same",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: yaad, swap: {retention: [l2]}}]}"),
        "space.ablations[0].swap.retention[0]",
        "yaad already has retention 'l2'",
    ),
    case(
        "ablation-gate-not-read",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: yaad, gates: {momentum: constant}}]}"),
        "space.ablations[0].gates.momentum",
        "yaad reads the gates lr, decay, delta",
    ),
    case(
        "ablation-gate-one",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: yaad, gates: {delta: one}}]}"),
        "space.ablations[0].gates.delta",
        "only the lr gate",
    ),
    case(
        "ablation-without-change",
        BASE.replace("{presets: [deltanet]}", "{ablations: [{base: yaad}]}"),
        "space.ablations[0]",
        "give swap and/or gates",
    ),
    # searched settings
    case(
        "search-param-unknown-section",
        BASE + "search: {params: {traning.weight_decay: [0.1]}}\n",
        "search.params.traning.weight_decay",
        "did you mean 'training'?",
    ),
    case(
        "search-param-unknown-field",
        BASE + "search: {params: {training.wd: [0.1]}}\n",
        "search.params.training.wd",
        "training has no field 'wd'",
    ),
    case(
        "search-param-no-combination-has-it",
        BASE + "search: {params: {bias.p: [2, 3]}}\n",
        "search.params.bias.p",
        "no combination's bias option has a parameter 'p'; their parameters: l2 (none)",
    ),
    case(
        "search-param-range-outside-the-option",
        BASE.replace("[deltanet]", "[moneta]") + "search: {params: {bias.p: {low: 0.5, high: 4}}}\n",
        "search.params.bias.p.low",
        "greater than or equal to 1",
    ),
    case(
        "search-param-value-outside-the-field",
        BASE + "search: {params: {model.gate_rank: [4, 0]}}\n",
        "search.params.model.gate_rank[1]",
        "greater than or equal to 1",
    ),
    case(
        "search-lr-twice",
        BASE + "search: {lr: [1e-3], params: {training.lr: [1e-2]}}\n",
        "search.params.training.lr",
        "search.lr is the shorthand",
    ),
    case(
        "search-width",
        BASE + "search: {params: {model.d_model: [32, 64]}}\n",
        "search.params.model.d_model",
        "give model.d_model a list of widths",
    ),
    case(
        "search-int-range-not-whole",
        BASE + "search: {params: {model.gate_rank: {low: 4.5, high: 8, int: true}}}\n",
        "search.params.model.gate_rank",
        "whole-number bounds",
    ),
    # several objectives
    case(
        "one-objective",
        BASE + "search: {objectives: [{metric: test_accuracy, mode: max}]}\n",
        "search.objectives",
        "give two or more",
    ),
    case(
        "objectives-and-metric",
        BASE + "search: {metric: test_loss, mode: min, objectives: [{metric: test_accuracy, mode: max}, "
        "{metric: tokens_per_second, mode: max}]}\n",
        "search.objectives",
        "not both",
    ),
    case(
        "objective-without-mode",
        BASE + "search: {objectives: [{metric: test_accuracy}, {metric: tokens_per_second, mode: max}]}\n",
        "search.objectives[0].mode",
        "required",
    ),
    case(
        "asha-on-a-final-measurement",
        BASE + "search: {scheduler: asha, objectives: [{metric: tokens_per_second, mode: max}, "
        "{metric: test_accuracy, mode: max}]}\n",
        "search.scheduler",
        "measured only at the end",
    ),
    # equal budgets
    case(
        "match-impossible",
        BASE.replace("[deltanet]", "[titans]") + "model: {n_heads: 4, match: {state_size: 16384}}\n",
        "model.match",
        "titans cannot be sized to state_size 16,384 within ±5%",
        "is 44, with 15,488 (-5.5%)",
    ),
    case(
        "match-two-budgets",
        BASE + "model: {match: {params: 100000, state_size: 4096}}\n",
        "model.match",
        "exactly one of params and state_size",
    ),
    case(
        "match-with-a-ladder",
        BASE + "model: {d_model: [32, 64], match: {params: 100000}}\n",
        "model.match",
        "not a ladder",
    ),
    # seeds
    case("no-seeds", BASE + "seeds: []\n", "seeds", "at least 1 item"),
    case("repeated-seed", BASE + "seeds: [0, 1, 0]\n", "seeds", "unique; repeated: 0"),
    case("negative-seed", BASE + "seeds: [0, -1]\n", "seeds[1]", "greater than or equal to 0"),
    # search
    case("lr-range-inverted", BASE + "search: {lr: {low: 1e-2, high: 1e-4}}\n", "search.lr.high", "greater than low"),
    case("lr-neither-range-nor-list", BASE + "search: {lr: fast}\n", "search.lr", "a range {low, high, log} or a list"),
    case("lr-value-not-positive", BASE + "search: {lr: [1e-3, 0]}\n", "search.lr[1]", "greater than 0"),
    case(
        "trials-with-lr-list",
        BASE + "search: {lr: [1e-3, 3e-4], trials_per_combination: 4}\n",
        "search.trials_per_combination",
        "list of 2 values",
    ),
    case("metric-without-mode", BASE + "search: {metric: val_loss}\n", "search.mode", "max or min"),
    case("bad-scheduler", BASE + "search: {scheduler: hyperband}\n", "search.scheduler", "'none' or 'asha'"),
    # resources and tracking
    case("zero-cpu", BASE + "resources: {cpu: 0}\n", "resources.cpu", "greater than 0"),
    case("gpu-fraction-above-one", BASE + "resources: {gpu: 1.5}\n", "resources.gpu", "(0, 1]"),
    case("negative-gpu", BASE + "resources: {gpu: -0.5}\n", "resources.gpu", "greater than or equal to 0"),
    case("file-store-uri", BASE + "tracking: {uri: ./mlruns}\n", "tracking.uri", "file stores are deprecated"),
    case("tracking-typo", BASE + "tracking: {experiments: x}\n", "tracking.experiments", "'experiment'?"),
]


@pytest.mark.parametrize(("text", "path", "fragments"), MALFORMED)
def test_malformed_config_exits_2_naming_the_field(write, validate, text, path, fragments):
    code, out, lines = validate(write(text))
    assert code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith(f"{path}: "), lines
    line = lines[0]
    for fragment in fragments:
        assert fragment in line


def test_minimal_config_validates(write, validate):
    code, out, lines = validate(write(BASE))
    assert (code, lines) == (0, [])
    first, listing = out.strip().splitlines()
    assert first.endswith(": 1 combination x 1 seed = 1 trial")
    assert listing == "  combinations (miras train --combination): 0=deltanet"  # the labels miras train takes


GRID = """\
name: quickstart
task:
  name: mqar
  seq_len: 64
  num_kv_pairs: 4
model: {d_model: 64, n_layers: 2, n_heads: 2, swa_window: 256}
training: {steps: 300, batch_size: 32, lr: 1e-3, precision: bf16}
space:
  presets: [gated_deltanet, titans_h]
  grid:
    memory: [linear]
    bias: [l2, {name: lp, params: {p: 3}}]
    retention: [none, l2]
    algorithm: [gd]
seeds: [0, 1]
search:
  lr: {low: 1e-4, high: 1e-2, log: true}
  trials_per_combination: 4
  metric: test_accuracy
  mode: max
  scheduler: asha
resources: {cpu: 1, gpu: 0.25}
tracking: {experiment: null, uri: null}
"""


def test_grid_config_validates(write, validate):
    code, out, lines = validate(write(GRID))
    assert (code, lines) == (0, [])
    assert out.splitlines()[0].endswith(": 6 combinations x 2 seeds x 4 searched learning rates = 48 trials")


def test_every_problem_is_reported_at_once(write, validate):
    path = write(BASE.replace("name: t", "name: a b") + "training: {lr: -1}\nseeds: [0, 0]\n")
    code, _, lines = validate(path)
    assert code == 2
    assert [line.split(":")[0] for line in lines] == ["name", "training.lr", "seeds"]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 3 and len(str(caught.value).splitlines()) == 3


def test_space_is_checked_even_when_other_sections_are_invalid(write):
    with pytest.raises(ConfigError) as caught:
        load_config(write(BASE.replace("[deltanet]", "[deltanett]") + "model: {n_heads: 3, swa_window: 8}\n"))
    assert [path for path, _ in caught.value.problems] == ["model.n_heads", "space.presets[0]"]


def test_a_billion_laughs_is_refused_without_expanding_it(write, validate):
    """10 levels of 10 aliases: 1 KB that expands to 10^10 values (it hung, then died at 5 GB)."""
    levels = ["l0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    code, _, lines = validate(write("\n".join(levels) + "\nname: *l9\nseeds: *l9\n" + BASE.split("\n", 1)[1]))
    assert code == 2 and len(lines) == 1
    assert "refused at line 1" in lines[0] and "aliases expand to more than 100,000 values" in lines[0]


def test_deep_nesting_is_refused(write, validate):
    code, _, lines = validate(write(BASE.replace("[deltanet]", "[" * 600 + "deltanet" + "]" * 600)))
    assert code == 2 and "refused at line 3" in lines[0] and "nested more than 32 levels deep" in lines[0]


def test_not_yaml_names_the_line(write, validate):
    path = write("name: t\ntask: {name: mqar\nspace: {presets: [deltanet]}\n")
    code, _, lines = validate(path)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"{path}: not valid YAML at line 3")


def test_missing_file(tmp_path, validate):
    code, _, lines = validate(tmp_path / "nope.yaml")
    assert code == 2
    assert lines == [f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"]


@pytest.mark.parametrize(
    ("text", "found"),
    [("", "an empty file"), ("- name: t\n", "a list"), ("just a string\n", "a str")],
    ids=["empty", "list", "scalar"],
)
def test_top_level_must_be_a_mapping(write, validate, text, found):
    path = write(text)
    code, _, lines = validate(path)
    assert code == 2
    assert lines == [f"{path}: expected a mapping of sections (name, task, space, ...), found {found}"]


def test_duplicate_yaml_keys_are_reported_with_their_line(write, validate):
    path = write(BASE + "seeds: [0]\nseeds: [1]\n")
    code, _, lines = validate(path)
    assert code == 2 and lines == [f"{path}: line 5: duplicate key 'seeds'"]
