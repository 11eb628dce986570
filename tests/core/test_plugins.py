"""Plugins (mixup_core.plugins): the example plugin's entries behave like built-ins, a plugin
scheme trains packed exactly like the same function built in, and every broken plugin is one
line naming it, exit 2, before anything starts."""

from __future__ import annotations

import math
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

from mixup_cli.main import main
from mixup_core import plugins
from mixup_core.config import from_flat
from mixup_core.data.image_sources import load_digits_images
from mixup_core.schemes import LABEL_SCHEMES, Power
from mixup_core.training import Pack
from tests.sweep_helpers import CLI, cli_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugins"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=cli_env())


def test_the_plugins_command_lists_built_ins_and_the_example_with_their_origins(tmp_path):
    out = run_cli("plugins", str(EXAMPLE / "spec.yaml"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {tuple(line.split()[:3]) for line in out.stdout.splitlines() if line.startswith("  ")}
    assert ("label", "scheme", "sigmoid") in rows and ("label", "scheme", "same") in rows
    lines = out.stdout.splitlines()
    sigmoid = next(line for line in lines if " sigmoid " in line)
    assert "mixup_ext (" in sigmoid and "mixup_ext.py:" in sigmoid
    same = next(line for line in lines if " same " in line)
    assert "mixup_core.schemes" in same
    assert any(" digits_faint " in line and "mixup_ext" in line for line in lines)
    assert any(" brier " in line and line.strip().startswith("metric") for line in lines)
    loaded = lines[lines.index("Plugins loaded:") + 1]
    assert loaded.split()[0] == "mixup_ext" and loaded.split()[1].startswith("sha256:")


def _power_formula(lam, *, param, resample):
    """The built-in `power` scheme's function (mixup_core.schemes.Power), as a plugin."""
    log_ratio = torch.log(lam.clamp_min(1e-30)) - torch.log((1 - lam).clamp_min(1e-30))
    return torch.sigmoid(param * log_ratio)


def test_a_plugin_scheme_trains_packed_exactly_like_the_same_function_built_in():
    name = "power_as_plugin"
    if name not in LABEL_SCHEMES:
        plugins.label_scheme(name, param="p", default=2.0, range=(0.0, 100.0))(_power_formula)
    assert LABEL_SCHEMES.get("power") is Power
    base = {"data.dim": 60, "data.n_train": 40, "data.n_val": 40, "data.n_test": 40,
            "optim.epochs": 30, "log_every": 10, "optim.lr": 0.5}
    configs = [from_flat({**base, "mixup.label_scheme": scheme, "mixup.label_param": p,
                          "seed": seed})
               for scheme in ("power", name) for p in (1.5, 3.0) for seed in (0, 1)]
    results = Pack(configs).run()
    half = len(configs) // 2
    for built_in, plugin in zip(results[:half], results[half:], strict=True):
        assert built_in.history == plugin.history  # every logged metric, exactly


def _write(folder: Path, name: str, body: str) -> Path:
    plugin = folder / f"{name}.py"
    plugin.write_text("import torch\nfrom mixup_core import plugins\n" + textwrap.dedent(body))
    spec = folder / f"{name}.yaml"
    spec.write_text(textwrap.dedent(f"""\
        name: {name}
        plugins: [./{name}.py]
        trial:
          data: {{name: digits, max_train: 200, max_test: 100}}
          model: {{name: small_cnn, channels: 4}}
          optim: {{epochs: 1, batch_size: 64}}
        """))
    return spec


#: A broken plugin, the spec lines that use it, and what its one error line must contain.
BROKEN = {
    "import_fails": ("raise RuntimeError('no GPU driver here')\n", "",
                     "/import_fails.py' failed to import: RuntimeError: no GPU driver here"),
    "out_of_range": ("""
        @plugins.label_scheme("twice")
        def twice(lam, *, param, resample):
            return 2 * lam
        """, "", "label scheme 'twice': g must stay in [0, 1]; the probe batch gave g = 1.062 at λ = 0.5312"),
    "not_vectorised": ("""
        @plugins.label_scheme("scalar")
        def scalar(lam, *, param, resample):
            return 1.0 if float(lam) > 0.5 else 0.0
        """, "", "label scheme 'scalar' is not vectorised: on a probe batch of 66 λ values it "
                 "raised"),
    "duplicate": ("""
        @plugins.label_scheme("same")
        def same(lam, *, param, resample):
            return lam
        """, "", "label scheme 'same' is registered twice: by mixup_core.schemes ("),
    "stateful_model": ("""
        class Gate(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(64, 10)

            def forward(self, x):
                x = x.flatten(1)
                if x.mean().item() > 1e9:  # data-dependent Python control flow
                    x = -x
                return self.linear(x)

        @plugins.model("gated")
        def gated(config, data, generator):
            return Gate()
        """, "  model.name: gated\n",
                       "model 'gated' does not train packed (torch.func over the members' stacked "
                       "weights): RuntimeError: vmap: It looks like you're calling .item() on a "
                       "Tensor; its forward must be functional"),
    "bad_model": ("""
        @plugins.model("seven_logits")
        def seven(config, data, generator):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 7))
        """, "  model.name: seven_logits\n",
                  "model 'seven_logits' gives outputs of shape (2, 7) for 2 inputs; data set "
                  "'digits' needs (2, 10), one logit per class"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_plugin_is_one_line_naming_it_exit_2_nothing_started(tmp_path, case, capsys,
                                                                      monkeypatch):
    body, trial_extra, expected = BROKEN[case]
    spec = _write(tmp_path, case, body)
    if trial_extra:
        spec.write_text(spec.read_text().replace("  model: {name: small_cnn, channels: 4}\n",
                                                  trial_extra))
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(spec), "--storage", "res", "--no-report"])  # in process: no Ray
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], (code, err)
    assert lines[0].startswith("mixup-sweep run: error: ")
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_a_plugin_data_set_without_subgroups_is_one_note_not_an_error(tmp_path):
    @plugins.dataset("digits_plain")
    def plain(config):
        return load_digits_images(config)

    config = from_flat({"data.name": "digits_plain", "data.max_train": 200, "data.max_test": 100,
                        "model.name": "small_cnn", "model.channels": 4})
    assert plugins.preflight(config) == [
        "note: data set 'digits_plain' gives no subgroup labels (rare_train, rare_test): "
        "*/acc_rare and */acc_common are absent"]
    [result] = Pack([config.replace(**{"optim.epochs": 1})]).run()
    assert math.isnan(result.history[-1]["test/acc_rare"])  # absent, and training went on
    assert result.history[-1]["test/acc"] > 0


def test_a_metric_name_with_a_slash_is_refused():
    with pytest.raises(plugins.PluginError, match="has no '/'"):
        plugins.metric("test/brier")


def test_probe_batch_catches_a_scheme_that_returns_the_wrong_shape():
    with pytest.raises(plugins.PluginError, match="is not vectorised: 66 λ values gave"):
        plugins.label_scheme("first_only")(lambda lam, *, param, resample: lam[:1])
    assert "first_only" not in LABEL_SCHEMES


def test_a_functional_plugin_model_trains_packed_as_alone():
    name = "tiny_mlp"
    if ("model", name) not in plugins.ENTRIES:
        @plugins.model(name)
        def tiny(config, data, generator):
            net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, data.num_classes))
            with torch.no_grad():
                net[1].weight.copy_(torch.randn(net[1].weight.shape, generator=generator) * 0.05)
                net[1].bias.zero_()
            return net
    configs = [from_flat({"data.name": "digits", "data.max_train": 200, "data.max_test": 100,
                          "model.name": name, "optim.epochs": 2, "optim.batch_size": 32,
                          "log_every": 1, "precision": "float32", "seed": seed,
                          "optim.lr": lr}) for seed, lr in ((0, 0.1), (1, 0.05))]
    assert plugins.preflight(configs[0]) == []  # output shape and a packed step: fine
    together = Pack(configs).run()
    for config, packed in zip(configs, together, strict=True):
        [alone] = Pack([config]).run()
        for got, want in zip(packed.history, alone.history, strict=True):
            assert got.keys() == want.keys()
            for key in want:
                assert got[key] == pytest.approx(want[key], abs=1e-5, nan_ok=True), key


def test_an_installed_entry_point_plugin_loads_without_being_named(tmp_path):
    site = tmp_path / "site"
    (site / "epdemo-1.0.dist-info").mkdir(parents=True)
    (site / "epdemo-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: epdemo\nVersion: 1.0\n")
    (site / "epdemo-1.0.dist-info" / "entry_points.txt").write_text(
        "[mixup_sweeps.plugins]\nepdemo = epdemo\n")
    (site / "epdemo.py").write_text(textwrap.dedent("""\
        import torch
        from mixup_core import plugins

        @plugins.label_scheme("ep_half")
        def half(lam, *, param, resample):
            return torch.full_like(lam, 0.5)
        """))
    spec = tmp_path / "ep.yaml"
    spec.write_text("name: ep\ntrial: {mixup: {label_scheme: ep_half}}\n")
    env = {**cli_env(), "PYTHONPATH": f"{site}:{cli_env().get('PYTHONPATH', '')}"}
    listing = subprocess.run([*CLI, "plugins"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, env=env)
    assert listing.returncode == 0, listing.stderr
    assert any(" ep_half " in line and "epdemo" in line for line in listing.stdout.splitlines())
    assert "  epdemo  1.0  entry point: mixup_sweeps.plugins:epdemo" in listing.stdout
    plan = subprocess.run([*CLI, "plan", str(spec)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)
    assert plan.returncode == 0 and "ep_half" in plan.stdout, plan.stderr
    without = subprocess.run([*CLI, "plan", str(spec)], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, env=cli_env())
    assert without.returncode == 2 and "unknown label scheme" in without.stderr
