"""The architecture, checked: one direction of dependence between the packages, one adapter
module per outside system, and commands that read results without importing torch or Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps.spec.yaml_numbers import safe_load
from tests.sweep_helpers import write_finished_sweep

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mixup_core", "sweeps", "dashboards", "cluster", "mixup_cli")
#: Who may import whom: mixup_core <- sweeps <- dashboards <- mixup_cli; cluster stands alone.
ALLOWED = {
    "mixup_core": {"mixup_core"},
    "sweeps": {"sweeps", "mixup_core"},
    "dashboards": {"dashboards", "sweeps", "mixup_core"},
    "cluster": {"cluster"},
    "mixup_cli": set(PACKAGES),
}
#: The one place allowed to import each outside system: a wing, or one module.
ADAPTERS = {"mlflow": "sweeps/tracking/", "optuna": "sweeps/optuna_adapter.py",
            "ray": "sweeps/execution/", "pyarrow": "sweeps/store/parquet_io.py"}
#: Where another project's internals may be touched: one fenced file each.
INTERNALS = {"ray": ("sweeps/execution/ray_patches.py",
                     ("ray.tune.execution", "ray.tune.experiment", "ray.tune.result", "ray._",
                      "ray.air", "ray.train._")),
             "mlflow": ("sweeps/tracking/sqlite_batch.py",
                        ("mlflow.store", "mlflow.utils", "mlflow.protos", "mlflow.server"))}
#: The wings of ``sweeps`` and the face, and whom each may import: spec <- store <- tracking <-
#: {sweep, execution}; errors, lazy and optuna_adapter are leaves; the face (sweeps/*.py) sees all but
#: execution, which it reaches only lazily from ``sweeps.run``.
WINGS = {
    "errors": set(),
    "lazy": set(),
    "optuna_adapter": set(),
    "spec": {"errors", "lazy", "spec"},
    "store": {"errors", "lazy", "spec", "store"},
    "tracking": {"errors", "lazy", "spec", "store", "tracking"},
    "execution": {"errors", "lazy", "spec", "store", "tracking", "execution", "optuna_adapter",
                  "face"},
    "face": {"errors", "lazy", "spec", "store", "tracking", "optuna_adapter", "face"},
}
FACE_MAY_LAUNCH = {"sweeps/__init__.py"}  # sweeps.run / sweeps.resume start the driver


def wing_of(module: str) -> str:
    """``sweeps.store.lock`` -> ``store``; ``sweeps.sweep`` / ``sweeps`` -> ``face``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in WINGS:
        return parts[1]
    return "face"


def module_imports(path: Path) -> set[str]:
    """Full dotted names of every module ``path`` imports (lazily inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


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


def test_each_outside_system_is_imported_by_one_adapter_wing_or_module():
    outside: list[str] = []
    for path in sources():
        where = str(path.relative_to(ROOT))
        for system in imports(path) & set(ADAPTERS):
            if not where.startswith(ADAPTERS[system]):
                outside.append(f"{where} imports {system}")
    assert outside == []


def test_other_projects_internals_are_touched_in_one_fenced_file_each():
    touched: list[str] = []
    for path in sources():
        where = str(path.relative_to(ROOT))
        for name in module_imports(path):
            for system, (fence, prefixes) in INTERNALS.items():
                if name.startswith(prefixes) and where != fence:
                    touched.append(f"{where} imports {name} ({system} internals)")
    assert touched == []


def test_the_wings_of_sweeps_depend_one_way():
    back_edges = []
    for path in sorted((ROOT / "sweeps").rglob("*.py")):
        here = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        wing = wing_of(here) if here != "sweeps" else "face"
        allowed = WINGS[wing] | ({"execution"} if str(path.relative_to(ROOT)) in FACE_MAY_LAUNCH
                                 else set())
        for name in module_imports(path):
            if name.split(".")[0] == "sweeps" and name != "sweeps" and wing_of(name) not in allowed:
                back_edges.append(f"{here} ({wing}) imports {name}")
    assert back_edges == []


def every_module() -> list[str]:
    modules = []
    for path in sources():
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


#: Imports each project module first in a child forked from an interpreter that has loaded the
#: heavy third-party packages only (none of the project), so an import circle inside the project
#: still fails while torch, Ray and MLflow load once instead of once per module.
FRESH_IMPORTS = """
import importlib, os, sys, traceback
for heavy in ("numpy", "pandas", "torch", "torchvision", "ray", "ray.tune", "mlflow", "optuna",
              "pyarrow", "pyarrow.parquet", "matplotlib", "matplotlib.figure", "scipy.stats",
              "yaml", "rich"):
    try:
        importlib.import_module(heavy)
    except ImportError:
        pass
assert not [m for m in sys.modules if m.split(".")[0] in {"sweeps", "mixup_core", "mixup_cli",
                                                          "dashboards", "cluster"}]
failed = []
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc().strip().splitlines()[-1].encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status):
        failed.append(name + ": " + (message or "?"))
print("\\n".join(failed))
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    """No import circles: each module, imported before anything else of the project."""
    modules = [m for m in every_module() if m != "mixup_cli.__main__"]
    out = subprocess.run([sys.executable, "-c", FRESH_IMPORTS, *modules], capture_output=True,
                         text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out.stdout


READERS = """
import sys
from mixup_cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:  # --help
    code = done.code
heavy = sorted(m for m in ("torch", "torchvision", "ray", "mlflow") if m in sys.modules)
print("HEAVY " + ",".join(heavy))
sys.exit(code)
"""


@pytest.mark.parametrize("command", [["best", "done"], ["best", "done", "--json"],
                                     ["export", "done", "--out", "x.parquet"],
                                     ["report", "done", "--no-mlflow"], ["--help"]])
def test_reading_a_finished_sweep_imports_neither_torch_nor_ray(tmp_path, command):
    write_finished_sweep(tmp_path / "sweep_results", "done")
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


@pytest.mark.parametrize("wing", ["spec", "store", "tracking", "execution"])
def test_each_wing_re_exports_exactly_the_public_names_of_its_modules(wing):
    import importlib

    package = importlib.import_module(f"sweeps.{wing}")
    public: dict[str, str] = {}
    for path in sorted((ROOT / "sweeps" / wing).glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                names = []
            for name in names:
                if not name.startswith("_"):
                    public.setdefault(name, path.stem)
    assert set(package.__all__) - {"SpecError"} == set(public)
    for name, module in public.items():
        owner = importlib.import_module(f"sweeps.{wing}.{module}")
        assert getattr(package, name) is getattr(owner, name), name
