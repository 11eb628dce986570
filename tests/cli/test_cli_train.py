import json
import subprocess
import sys

import pytest

from mixup_core import METRIC_NAMES

CLI = [sys.executable, "-m", "mixup_cli"]
FAST = ["--set", "optim.epochs=20", "--set", "log_every=10", "--set", "data.dim=64",
        "--set", "data.n_train=40", "--set", "data.n_test=40"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_train_json_prints_the_final_metrics_on_the_last_line():
    out = run("train", *FAST, "--json")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    final = json.loads(lines[-1])
    assert set(METRIC_NAMES) <= set(final) and final["epoch"] == 20
    assert any(line.split()[:1] == ["10"] for line in lines)  # the live table's first row


def test_train_reads_the_trial_section_of_a_spec_and_set_overrides_it(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\ntrial:\n  data: {dim: 64, n_train: 40, n_test: 40}\n"
                    "  optim.epochs: 10\nsearch_space: {}\n")
    out = run("train", str(spec), "--set", "log_every=5", "--set", "mixup.alpha=0", "--json")
    assert out.returncode == 0, out.stderr
    final = json.loads(out.stdout.strip().splitlines()[-1])
    assert final["epoch"] == 10 and final["mixup/active"] == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "mixup.alpha=-1"], "mixup.alpha: must be >= 0"),
        (["--set", "mixup.label_scheme=nope"], "mixup.label_scheme: unknown label scheme"),
        (["--set", "data.rho=2"], "data.rho: must be in [0.0, 1.0]"),
        (["--set", "mixup.stop_epoch=-5"], "mixup.stop_epoch: must be >= 0"),
        (["--set", "oops"], "expected KEY=VALUE"),
        (["missing.yaml"], "missing.yaml: no such file"),
    ],
)
def test_bad_input_gives_one_line_on_stderr_and_exit_code_2(args, message):
    out = run("train", *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_a_diverging_trial_exits_nonzero_and_says_why():
    out = run("train", *FAST, "--set", "optim.lr=1e3")
    assert out.returncode == 1
    assert "train/loss became nan" in out.stderr
