"""The names a trial config may use, and what it checks about them, without importing torch.

The registries (:mod:`mixup_core.data`, :mod:`mixup_core.models`, :mod:`mixup_core.schemes`) hold
the builders, which need torch; this module holds only their names, the input kind of each model,
the parameter of each label scheme and the metrics a trial reports. :mod:`mixup_core.config` and
the sweep specs check against it, so reading and checking a config starts no torch.
``tests/core/test_catalog.py`` proves that every registry and this catalog name the same entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DATASET_NAMES", "GENERATED_IMAGE_DATASET_NAMES", "IMAGE_DATASET_NAMES", "LABEL_SCHEME_NAMES",
    "LABEL_SCHEME_PARAMS", "METRIC_NAMES", "MODEL_INPUTS", "MODEL_NAMES", "VIEW_METRIC_NAMES", "InputKind",
    "LabelParam",
]

#: Real image data sets, as registered in ``mixup_core.data.IMAGE_SOURCES``.
IMAGE_DATASET_NAMES: tuple[str, ...] = ("cifar10", "cifar100", "digits", "mnist5k")
#: Image data sets generated from real pixels rather than loaded (``mixup_core.data.planted``):
#: the paper's feature-noise model with scikit-learn digit glyphs planted on MNIST canvases.
GENERATED_IMAGE_DATASET_NAMES: tuple[str, ...] = ("planted_glyphs",)
#: Every data set, as registered in ``mixup_core.data.DATASETS``: the feature-noise patch task
#: and the image data sets.
DATASET_NAMES: tuple[str, ...] = tuple(sorted(("feature_noise", *IMAGE_DATASET_NAMES,
                                               *GENERATED_IMAGE_DATASET_NAMES)))

#: What a model reads: the feature-noise task's (n, P, d) patches or (n, C, H, W) images.
InputKind = Literal["patches", "images"]
#: Every model, as registered in ``mixup_core.models.MODELS``, and the inputs it reads.
MODEL_INPUTS: Mapping[str, InputKind] = MappingProxyType({
    "patch_cnn": "patches", "preact_resnet18": "images", "small_cnn": "images",
})
MODEL_NAMES: tuple[str, ...] = tuple(sorted(MODEL_INPUTS))


@dataclass(frozen=True)
class LabelParam:
    """A label scheme's one numeric parameter: its name, default and closed valid range."""

    name: str
    default: float
    range: tuple[float, float]


#: Every label scheme, as registered in ``mixup_core.schemes.LABEL_SCHEMES``, and its parameter
#: (None: the scheme takes none).
LABEL_SCHEME_PARAMS: Mapping[str, LabelParam | None] = MappingProxyType({
    "constant": LabelParam("c", 0.5, (0.0, 1.0)),
    "dominant": None,
    "independent": None,
    "power": LabelParam("p", 2.0, (0.0, 100.0)),
    "same": None,
    "threshold": LabelParam("t", 0.75, (0.5, 1.0)),
})
LABEL_SCHEME_NAMES: tuple[str, ...] = tuple(sorted(LABEL_SCHEME_PARAMS))

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
