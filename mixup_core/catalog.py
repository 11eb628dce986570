"""The names a trial config may use, and what it checks about them, without importing torch.

The registries (:mod:`mixup_core.data`, :mod:`mixup_core.models`, :mod:`mixup_core.schemes`) hold
the builders, which need torch; this module holds only their names, the input kind of each model,
the parameter of each label scheme and the metrics a trial reports. :mod:`mixup_core.config` and
the sweep specs check against it, so reading and checking a config starts no torch.
``tests/core/test_catalog.py`` proves that every registry and this catalog name the same entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, overload

__all__ = [
    "DATASET_NAMES",
    "GENERATED_IMAGE_DATASET_NAMES",
    "IMAGE_DATASET_NAMES",
    "LABEL_SCHEME_NAMES",
    "LABEL_SCHEME_PARAMS",
    "METRIC_NAMES",
    "MODEL_INPUTS",
    "MODEL_NAMES",
    "PLUGIN_METRIC_NAMES",
    "VIEW_METRIC_NAMES",
    "InputKind",
    "LabelParam",
    "Names",
    "add_dataset",
    "add_label_scheme",
    "add_metric",
    "add_model",
    "objective_metrics",
]



class Names(Sequence[str]):
    """A sorted, live view of a set of names: plugins (:mod:`mixup_core.plugins`) add to it,
    and every module that imported it sees the addition."""

    def __init__(self, *names: str, within: Iterable[Names] = ()) -> None:
        self._names = set(names)
        self._parents = list(within)  # views that must also name whatever this one names

    def add(self, name: str) -> None:
        self._names.add(name)
        for parent in self._parents:
            parent.add(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return sorted(self._names)[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Sequence, Names)) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Names{tuple(self)!r}"


#: Every data set, as registered in ``mixup_core.data.DATASETS``: the feature-noise patch task,
#: the image data sets and the plugins' data sets.
DATASET_NAMES = Names("feature_noise")
#: Real image data sets, as registered in ``mixup_core.data.IMAGE_SOURCES``.
IMAGE_DATASET_NAMES = Names(within=[DATASET_NAMES])
for _name in ("cifar10", "cifar100", "digits", "mnist5k"):
    IMAGE_DATASET_NAMES.add(_name)
#: Image data sets generated from real pixels rather than loaded (``mixup_core.data.planted``):
#: the paper's feature-noise model with scikit-learn digit glyphs planted on MNIST canvases.
GENERATED_IMAGE_DATASET_NAMES = Names(within=[DATASET_NAMES])
GENERATED_IMAGE_DATASET_NAMES.add("planted_glyphs")

#: What a model reads: the feature-noise task's (n, P, d) patches or (n, C, H, W) images.
InputKind = Literal["patches", "images"]
_MODEL_INPUTS: dict[str, InputKind] = {
    "patch_cnn": "patches", "preact_resnet18": "images", "small_cnn": "images",
}
#: Every model, as registered in ``mixup_core.models.MODELS``, and the inputs it reads.
MODEL_INPUTS: Mapping[str, InputKind] = MappingProxyType(_MODEL_INPUTS)
MODEL_NAMES = Names(*_MODEL_INPUTS)


@dataclass(frozen=True)
class LabelParam:
    """A label scheme's one numeric parameter: its name, default and closed valid range."""

    name: str
    default: float
    range: tuple[float, float]


#: Every label scheme, as registered in ``mixup_core.schemes.LABEL_SCHEMES``, and its parameter
#: (None: the scheme takes none).
_LABEL_SCHEME_PARAMS: dict[str, LabelParam | None] = {
    "constant": LabelParam("c", 0.5, (0.0, 1.0)),
    "dominant": None,
    "independent": None,
    "power": LabelParam("p", 2.0, (0.0, 100.0)),
    "same": None,
    "threshold": LabelParam("t", 0.75, (0.5, 1.0)),
}
LABEL_SCHEME_PARAMS: Mapping[str, LabelParam | None] = MappingProxyType(_LABEL_SCHEME_PARAMS)
LABEL_SCHEME_NAMES = Names(*_LABEL_SCHEME_PARAMS)

#: Every metric a trial reports at each logging epoch, namespaced by what it measures.
#: ``val/*`` is what sweeps choose on; ``test/*`` is only reported.
METRIC_NAMES = (
    "train/loss", "train/acc", "val/loss", "val/acc", "val/acc_common", "val/acc_rare",
    "test/loss", "test/acc", "test/acc_common", "test/acc_rare",
    "features/common_alignment", "features/rare_alignment", "features/noise_memorization",
    "mixup/active",
)
#: Metrics that only some data report (NaN or absent elsewhere): the share of rare errors that
#: predict the class of the point's feature noise, and the probes of the mechanism
#: (``docs/science.md``, "Real images").
VIEW_METRIC_NAMES = (
    "val/rare_err_noise", "test/rare_err_noise",
    "probe/rare_glyph", "probe/memorise", "probe/ridge_rare",
)

#: Metrics that plugins add (``mixup_core.plugins.metric``): each is reported as ``val/<name>``
#: and ``test/<name>``, and those names join what an objective may name.
PLUGIN_METRIC_NAMES = Names()


def _new(kind: str, name: str, names: Names) -> None:
    if name in names:
        raise ValueError(f"{kind} {name!r} is already in the catalog")


def add_label_scheme(name: str, param: LabelParam | None) -> None:
    """Catalogues a plugin's label scheme (see :mod:`mixup_core.plugins`)."""
    _new("label scheme", name, LABEL_SCHEME_NAMES)
    _LABEL_SCHEME_PARAMS[name] = param
    LABEL_SCHEME_NAMES.add(name)


def add_model(name: str, inputs: InputKind) -> None:
    """Catalogues a plugin's model and the inputs it reads."""
    _new("model", name, MODEL_NAMES)
    _MODEL_INPUTS[name] = inputs
    MODEL_NAMES.add(name)


def add_dataset(name: str) -> None:
    """Catalogues a plugin's image data set (loaded like the built-in image sources)."""
    _new("data set", name, DATASET_NAMES)
    IMAGE_DATASET_NAMES.add(name)


def add_metric(name: str) -> None:
    """Catalogues a plugin's metric."""
    _new("metric", name, PLUGIN_METRIC_NAMES)
    PLUGIN_METRIC_NAMES.add(name)


def objective_metrics() -> list[str]:
    """Every metric an objective may name: the trial metrics, the view metrics and the
    plugins' ``val/`` and ``test/`` metrics, each also as its ``_std``."""
    names = [*METRIC_NAMES, *VIEW_METRIC_NAMES,
             *(f"{split}/{m}" for m in PLUGIN_METRIC_NAMES for split in ("val", "test"))]
    return [*names, *(f"{name}_std" for name in names)]
