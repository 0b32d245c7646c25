"""A real third-party plugin: a distribution declaring a ``miras.plugins`` entry point, pip-installed
into a temporary target directory and used by a separate Python process."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parents[1] / "fixtures" / "miras-cauchy-bias"


def install(target, *fixtures):
    """pip-install the fixture packages into ``target``; the environment that puts it on the path."""
    for fixture in fixtures:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(fixture)],
            check=True,
        )  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    return install(tmp_path_factory.mktemp("site"), FIXTURE)


def run(env, *args, **kwargs):
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, **kwargs)


def test_plugin_bias_is_listed_with_its_origin(plugin_env):
    result = run(plugin_env, "-m", "miras.cli", "list", "bias")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith("cauchy"))
    assert "[miras-cauchy-bias]" in line and "Cauchy" in line
    assert "scale: float = 1.0" in result.stdout


def test_plugin_bias_validates_in_a_config_by_name(plugin_env, tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text(
        textwrap.dedent(
            """
            name: plugin
            task: {name: mqar}
            space:
              grid:
                memory: [linear]
                bias: [l2, {name: cauchy, params: {scale: 2.0}}]
                retention: [none]
                algorithm: [gd]
            """
        )
    )
    result = run(plugin_env, "-m", "miras.cli", "validate", str(config))
    assert result.returncode == 0, result.stderr
    assert "2 combinations x 1 seed = 2 trials" in result.stdout
    config.write_text(config.read_text().replace("scale: 2.0", "scale: -1"))
    result = run(plugin_env, "-m", "miras.cli", "validate", str(config))
    assert result.returncode == 2 and "space.grid.bias[1]" in result.stderr


def test_without_the_plugin_the_name_is_unknown(tmp_path):
    result = run(dict(os.environ), "-c", "from miras.space import REGISTRIES; print('cauchy' in REGISTRIES['bias'])")
    assert result.stdout.strip() == "False"


def test_plugin_bias_runs_through_autograd_in_every_implementation(plugin_env):
    script = textwrap.dedent(
        """
        import torch
        from miras.ops import miras_scan
        from miras.space import MirasSpec
        torch.manual_seed(0)
        B, T, H, D = 2, 9, 2, 4
        spec = MirasSpec.of("mlp", {"name": "cauchy", "params": {"scale": 0.5}}, "l2",
                            {"name": "gd", "params": {"batch_size": 3}})
        q, k, v = (torch.randn(B, T, H, D, dtype=torch.float64, requires_grad=True) for _ in range(3))
        gates = {n: torch.rand(B, T, H, dtype=torch.float64, requires_grad=True) for n in ("lr", "decay")}
        init = {n: 0.3 * torch.randn(B, H, 16, 4, dtype=torch.float64) if n == "W1"
                else 0.3 * torch.randn(B, H, 4, 16, dtype=torch.float64) for n in ("W1", "W2")}
        results = {}
        for impl in ("reference", "chunked"):
            out, _ = miras_scan(q, k, v, spec, gates, initial_state=init, impl=impl)
            grads = torch.autograd.grad(out.square().sum(), (q, k, v, gates["lr"]))
            results[impl] = (out, *grads)
        for a, b in zip(results["reference"], results["chunked"]):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-10), (a - b).abs().max()
        print("OK", float(results["reference"][0].abs().mean()))
        """
    )
    result = run(plugin_env, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")


BROKEN = Path(__file__).parents[1] / "fixtures" / "miras-broken-plugin"


@pytest.fixture(scope="module")
def two_plugins_env(tmp_path_factory):
    """The Cauchy plugin and one that registers a bias, then raises on import."""
    return install(tmp_path_factory.mktemp("site-two"), FIXTURE, BROKEN)


def test_a_broken_plugin_takes_no_other_down(two_plugins_env, tmp_path):
    result = run(two_plugins_env, "-m", "miras.cli", "list", "bias")
    assert result.returncode == 0, result.stderr
    assert any(line.strip().startswith("cauchy") for line in result.stdout.splitlines())
    assert "half_registered" not in result.stdout  # withdrawn with its failed plugin
    assert (
        "warning: plugin 'miras-broken-plugin' (entry point 'broken' = 'miras_broken') failed to load: "
        "ImportError: this plugin is broken on purpose" in result.stderr
    )
    config = tmp_path / "sweep.yaml"
    grid = "memory: [linear], bias: [{name: cauchy}], retention: [none], algorithm: [gd]"
    config.write_text(f"name: p\ntask: {{name: mqar}}\nspace: {{grid: {{{grid}}}}}\n")
    result = run(two_plugins_env, "-m", "miras.cli", "validate", str(config))
    assert result.returncode == 0, result.stderr
    config.write_text(config.read_text().replace("cauchy", "half_registered"))
    result = run(two_plugins_env, "-m", "miras.cli", "validate", str(config))
    assert result.returncode == 2
    assert "unknown bias option 'half_registered'" in result.stderr and "miras-broken-plugin" in result.stderr


SAVE_AND_RELOAD = """
import sys, torch, transformers, miras.hf
from miras.config.schema import ModelConfig
from miras.models import LanguageModel, architecture
from miras.space import MirasSpec
torch.manual_seed(0)
spec = MirasSpec.of("linear", {"name": "cauchy", "params": {"scale": 2.0}}, "l2", "gd")
model = LanguageModel(architecture(spec), 20, ModelConfig(d_model=16, n_heads=2, n_layers=1)).double()
miras.hf.to_hf(model).save_pretrained(sys.argv[1])
ids = torch.arange(12).view(2, 6)
loaded = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1])
assert torch.equal(loaded(ids).logits, model(ids)), "logits differ"
print(loaded.config.miras_plugins)
"""


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs the miras[hf] extra")
def test_a_saved_model_records_its_plugin_and_loads_only_where_it_is_installed(plugin_env, tmp_path):
    folder = tmp_path / "model"
    saved = run(plugin_env, "-c", SAVE_AND_RELOAD, str(folder))
    assert saved.returncode == 0, saved.stderr
    assert "'origin': 'miras-cauchy-bias'" in saved.stdout and "'module': 'miras_cauchy'" in saved.stdout
    load = "import sys, transformers, miras.hf; transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1])"
    without = run({k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "-c", load, str(folder))
    assert without.returncode == 1
    assert "option 'cauchy' comes from the plugin 'miras-cauchy-bias' (module 'miras_cauchy')" in without.stderr
