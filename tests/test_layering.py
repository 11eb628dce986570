"""The architecture, checked: one direction of dependence between the packages, one adapter
module per outside system, and commands that read results without importing torch or Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps.yaml_numbers import safe_load
from tests.test_reliability import make_sweep

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mixup_core", "sweeps", "dashboards", "cluster", "mixup_cli")
#: Who may import whom: mixup_core <- sweeps <- {dashboards, cluster} <- mixup_cli.
ALLOWED = {
    "mixup_core": {"mixup_core"},
    "sweeps": {"sweeps", "mixup_core"},
    "dashboards": {"dashboards", "sweeps", "mixup_core"},
    "cluster": {"cluster", "sweeps", "mixup_core"},
    "mixup_cli": set(PACKAGES),
}
#: The one module allowed to import each outside system.
ADAPTERS = {"mlflow": "sweeps/tracking.py", "optuna": "sweeps/optuna_adapter.py",
            "ray": "sweeps/ray_backend.py", "pyarrow": "sweeps/parquet_io.py"}


def imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, lazily inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def sources() -> list[Path]:
    return [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def test_packages_depend_in_one_direction_only():
    back_edges = []
    for path in sources():
        package = path.relative_to(ROOT).parts[0]
        for name in imports(path) & set(PACKAGES):
            if name not in ALLOWED[package]:
                back_edges.append(f"{path.relative_to(ROOT)} imports {name}")
    assert back_edges == []


def test_each_outside_system_is_imported_by_exactly_one_adapter_module():
    found: dict[str, set[str]] = {system: set() for system in ADAPTERS}
    for path in sources():
        for system in imports(path) & set(ADAPTERS):
            found[system].add(str(path.relative_to(ROOT)))
    assert found == {system: {module} for system, module in ADAPTERS.items()}


READERS = """
import sys
from mixup_cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:  # --help
    code = done.code
heavy = sorted(m for m in ("torch", "ray", "mixup_core") if m in sys.modules)
print("HEAVY " + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.parametrize("command", [["best", "done"], ["best", "done", "--json"],
                                     ["export", "done", "--out", "x.parquet"],
                                     ["report", "done", "--no-mlflow"], ["--help"]])
def test_reading_a_finished_sweep_imports_neither_torch_nor_ray(tmp_path, command):
    make_sweep(tmp_path / "sweep_results", "done")
    out = subprocess.run([sys.executable, "-c", READERS, *command], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "HEAVY ", out.stdout[-500:]


def test_yaml_reads_scientific_notation_as_numbers_and_keeps_integers_and_strings():
    tree = safe_load("lr: 1e-3\nwd: 5E-4\nhalf: .5\nneg: -2.5e+1\nsteps: 1000\nq: '1e-3'\n"
                     "big: 1_000\nflag: true\ninf: .inf\n")
    assert tree == {"lr": 0.001, "wd": 0.0005, "half": 0.5, "neg": -25.0, "steps": 1000,
                    "q": "1e-3", "big": 1000, "flag": True, "inf": float("inf")}
    assert isinstance(tree["steps"], int) and isinstance(tree["lr"], float)


def test_a_spec_with_a_learning_rate_in_scientific_notation_loads(tmp_path):
    from sweeps.spec import load_spec

    path = tmp_path / "sci.yaml"
    path.write_text("name: sci\ntrial:\n  optim.lr: 1e-3\n  optim.weight_decay: 5E-4\n"
                    "search: {algorithm: grid}\nobjective: {metric: val/acc_rare, mode: max}\n"
                    "search_space:\n  mixup.alpha: {kind: grid, values: [.5, 1e0]}\n")
    spec = load_spec(path)
    assert spec.base.optim.lr == 0.001 and spec.base.optim.weight_decay == 0.0005
    assert list(spec.search_space["mixup.alpha"].values) == [0.5, 1.0]


def test_the_science_is_in_the_repository_and_nothing_cites_a_file_outside_it():
    science = (ROOT / "docs" / "science.md").read_text()
    for topic in ("projected off the span", "`fold` and `independent`", "What the paper states",
                  "What we chose"):
        assert topic in science
    cited = [str(p.relative_to(ROOT)) for p in [*sources(), *(ROOT / "sweeps" / "specs").glob("*")]
             if "PAPER.md" in p.read_text()]
    assert cited == []
