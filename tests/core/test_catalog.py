"""The catalog, checked: it names exactly what the registries register, and reading a config or
a sweep spec through it imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from mixup_core import catalog
from mixup_core.config import TrialConfig
from mixup_core.data import DATASETS, IMAGE_SOURCES
from mixup_core.models import MODEL_INPUTS, MODELS
from mixup_core.registry import Registry
from mixup_core.schemes import LABEL_SCHEMES
from mixup_core.training import METRIC_NAMES
from tests.core.reference_trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "numpy", "sklearn")


def disagreements(registered: Iterable[str], catalogued: Iterable[str]) -> dict[str, list[str]]:
    """What one side names and the other does not; both lists empty when they agree."""
    ours, theirs = set(registered), set(catalogued)
    return {"registered, not in the catalog": sorted(ours - theirs),
            "in the catalog, not registered": sorted(theirs - ours)}


AGREE = {"registered, not in the catalog": [], "in the catalog, not registered": []}


@pytest.mark.parametrize(("registry", "catalogued"), [
    (DATASETS, catalog.DATASET_NAMES),
    (IMAGE_SOURCES, catalog.IMAGE_DATASET_NAMES),
    (MODELS, catalog.MODEL_NAMES),
    (LABEL_SCHEMES, catalog.LABEL_SCHEME_NAMES),
], ids=["datasets", "image sources", "models", "label schemes"])
def test_every_registry_registers_exactly_the_names_the_catalog_holds(registry, catalogued):
    assert disagreements(registry, catalogued) == AGREE
    assert list(catalogued) == registry.names()  # sorted, as config errors list them


def test_a_builder_registered_without_a_catalog_entry_is_caught():
    extended: Registry[object] = Registry("model")
    for name in (*catalog.MODEL_NAMES, "vit"):
        extended.register(name)(object())
    assert disagreements(extended, catalog.MODEL_NAMES)["registered, not in the catalog"] == ["vit"]
    assert disagreements(MODELS, (*catalog.MODEL_NAMES, "vit"))["in the catalog, not registered"] \
        == ["vit"]


def test_every_model_reads_the_input_kind_the_catalog_gives_it():
    assert dict(MODEL_INPUTS) == dict(catalog.MODEL_INPUTS)


@pytest.mark.parametrize("name", sorted({*LABEL_SCHEMES, *catalog.LABEL_SCHEME_NAMES}))
def test_every_label_scheme_takes_the_parameter_the_catalog_gives_it(name):
    scheme = LABEL_SCHEMES.get(name)
    param = catalog.LABEL_SCHEME_PARAMS[name]
    if param is None:
        assert (scheme.param_name, scheme.param_default) == (None, None)
    else:
        assert (scheme.param_name, scheme.param_default, scheme.param_range) \
            == (param.name, param.default, param.range)


def test_training_reports_exactly_the_catalogued_metrics():
    config = TrialConfig().replace(**{"data.dim": 16, "data.n_train": 8, "data.n_val": 8,
                                      "data.n_test": 8, "optim.epochs": 1})
    reported = Trainer(config).advance()
    assert sorted(reported) == sorted(["epoch", *catalog.METRIC_NAMES])
    assert METRIC_NAMES is catalog.METRIC_NAMES


READ_WITHOUT_TORCH = f"""
import json, sys
import mixup_core, mixup_core.catalog, mixup_core.config, sweeps.spec
from mixup_core import TrialConfig as Lazy
from mixup_core.config import TrialConfig, flat_keys, from_flat, to_flat, trains_as
from sweeps.spec import SweepSpec, load_spec

spec = load_spec("sweeps/specs/tiny_demo.yaml")
assert isinstance(spec, SweepSpec) and Lazy is TrialConfig
config = from_flat({{"mixup.label_scheme": "power", "mixup.label_param": 2.0}})
assert to_flat(trains_as(config))["mixup.label_param"] is None and "data.name" in flat_keys()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
"""


def test_reading_configs_and_sweep_specs_imports_no_torch():
    out = subprocess.run([sys.executable, "-c", READ_WITHOUT_TORCH], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
