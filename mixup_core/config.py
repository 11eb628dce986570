"""Frozen, validated trial configuration and its one bridge to flat dotted-key dicts.

A trial is fully described by a :class:`TrialConfig`. ``to_flat`` / ``from_flat`` convert it to
and from ``{"data.rho": 0.1, "mixup.alpha": 1.0, ...}``; that flat form is what Ray's
``param_space``, Optuna and MLflow params see, and it round-trips exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args, get_type_hints

from mixup_core.catalog import (
    DATASET_NAMES,
    GENERATED_IMAGE_DATASET_NAMES,
    IMAGE_DATASET_NAMES,
    LABEL_SCHEME_NAMES,
    LABEL_SCHEME_PARAMS,
    MODEL_INPUTS,
    MODEL_NAMES,
)
from mixup_core.errors import ConfigError

__all__ = [
    "ConfigError", "DataConfig", "MixupConfig", "ModelConfig", "OptimConfig", "TrialConfig",
    "flat_keys", "flatten_nested", "from_flat", "to_flat", "trains_as",
]


def _require(ok: bool, key: str, problem: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"{key}: {problem}, got {value!r}")


def _in_range(key: str, value: float, lo: float, hi: float, *, open_lo: bool = False) -> None:
    ok = (lo < value if open_lo else lo <= value) and value <= hi and math.isfinite(value)
    if math.isinf(hi):
        _require(ok, key, f"must be {'>' if open_lo else '>='} {lo}", value)
    bracket = "(" if open_lo else "["
    _require(ok, key, f"must be in {bracket}{lo}, {hi}]", value)


#: Upper bounds that keep a typo from exhausting memory or time; each error names its key.
MAX_DIM = 1_000_000
MAX_POINTS = 10_000_000  # data.n_train, data.n_val, data.n_test
MAX_EPOCHS = 10_000_000
#: A learning rate or weight decay above this diverges at the first step on any task here.
MAX_LR = 1_000.0
#: Patch-task tensors, in float32 values: the data (points × patches × dim) and the filters
#: (classes × width × dim). 250 M values = 1 GB, far above any task of the paper's kind.
MAX_TENSOR_VALUES = 250_000_000


def _at_most(key: str, value: float, limit: float, what: str = "") -> None:
    _require(value <= limit, key, f"must be <= {limit:,}{what}", value)


class _Section:
    """Mixin for component configs: knows its dotted prefix, checks registered names."""

    section: ClassVar[str]

    def _key(self, name: str) -> str:
        return f"{self.section}.{name}"

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            _require(value > 0, self._key(name), "must be > 0", value)


View = Literal["none", "rare_subclass", "long_tail", "multi_view", "colored"]


@dataclass(frozen=True)
class DataConfig(_Section):
    """The task: the paper's feature-noise generator, or a registered real image data set.

    ``num_classes`` to ``test_rare_fraction`` describe the feature-noise generator and are ignored
    by image data sets, whose classes and sizes come from their files. ``root`` to ``val_fraction``
    apply to image data sets only (see :mod:`mixup_core.data.images`); ``rho`` serves both.
    Both kinds have a validation split, what sweeps choose on: ``n_val`` points drawn for the
    feature-noise task, a held-out ``val_fraction`` of the training images for image data.
    ``planted_glyphs`` (the feature-noise model on real pixels, :mod:`mixup_core.data.planted`)
    reads the generator's ``num_classes``, ``rho``, ``n_train``, ``n_val``, ``n_test``,
    ``feature_noise`` and ``test_rare_fraction``, and its own ``canvas``.
    """

    section: ClassVar[str] = "data"
    name: str = "feature_noise"
    num_classes: int = 2  # K
    num_patches: int = 3  # P; patch 0 = feature, patch 1 = feature noise, rest = Gaussian noise
    dim: int = 2000  # d, dimension of each patch
    # Feature noise: probability that an example carries its class's rare feature. Image views:
    # training images a rare class keeps, as a fraction of a common class's count.
    rho: float = 0.1
    n_train: int = 200
    n_test: int = 1000
    # Validation points, drawn from their own seeded stream; rare share as the test set's.
    n_val: int = 1000
    feature_norm: float = 1.0  # norm of every common and rare feature vector
    feature_noise: float = 0.05  # α_fn: strength of the other-class common feature in patch 1
    noise_std: float | None = None  # σ_p; None means 4/sqrt(dim), a noise norm of about 4
    noise_on_feature_patches: bool = False  # add Gaussian noise to patches 0 and 1 as well
    test_rare_fraction: float | None = None  # fraction of rare test points; None means rho
    # Folder holding the data set's files; None means $MIXUP_DATA_ROOT/<name> when that variable
    # is set, else ./data/<name>. Relative paths are relative to the working directory.
    root: str | None = None
    download: bool = False  # cifar10/cifar100: fetch the archive into root when it is missing
    # none: every class as it is; rare_subclass: classes 2s and 2s+1 become super-class s, the
    # odd one rare; long_tail: the upper half of the classes is the rare tail; multi_view: every
    # training image carries a second view (a partner class's digit) in a second channel, test
    # images only the first; colored: Colored MNIST, a colour shortcut that flips at test time
    # (the negative control). See mixup_core.data.views and mixup_core.data.pixel_views.
    view: View = "none"
    # rare_subclass: every image also carries a faint common digit of another super-class at
    # this intensity (feature noise; 0 = none).
    overlay: float = 0.0
    # multi_view: the second view's weight on each training image, uniform on [0, second_view].
    second_view: float = 1.0
    # planted_glyphs: intensity sigma of the MNIST canvas under the glyphs (the memorisable,
    # point-by-point noise), 0..1.
    canvas: float = 0.5
    augment: bool = False  # random crop with zero padding, plus a horizontal flip where it fits
    max_train: int | None = None  # at most this many training images (random, before the view)
    max_test: int | None = None  # at most this many test images (random, before the view)
    # Image data: the share of each class's training images held out for validation.
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        _require(self.name in DATASET_NAMES, "data.name",
                 f"unknown data set (known: {list(DATASET_NAMES)})", self.name)
        _in_range("data.num_classes", self.num_classes, 2, 1000)
        _in_range("data.num_patches", self.num_patches, 2, 1000)
        self._positive("dim", "n_train", "n_val", "n_test", "feature_norm")
        _at_most("data.dim", self.dim, MAX_DIM)
        _at_most("data.n_train", self.n_train, MAX_POINTS)
        _at_most("data.n_val", self.n_val, MAX_POINTS)
        _at_most("data.n_test", self.n_test, MAX_POINTS)
        _in_range("data.val_fraction", self.val_fraction, 0.0, 0.5, open_lo=True)
        _require(self.dim >= 2 * self.num_classes, "data.dim",
                 f"must be >= 2 * data.num_classes = {2 * self.num_classes}", self.dim)
        _in_range("data.rho", self.rho, 0.0, 1.0)
        _in_range("data.feature_noise", self.feature_noise, 0.0, math.inf)
        if self.noise_std is not None:
            _in_range("data.noise_std", self.noise_std, 0.0, math.inf)
        if self.test_rare_fraction is not None:
            _in_range("data.test_rare_fraction", self.test_rare_fraction, 0.0, 1.0)
        _require(self.root is None or self.root.strip() != "", "data.root",
                 "must be a folder path or null", self.root)
        _require(self.view in get_args(View), "data.view", f"must be one of {list(get_args(View))}",
                 self.view)
        for name in ("max_train", "max_test"):
            if (value := getattr(self, name)) is not None:
                _in_range(self._key(name), value, 1, math.inf)
        _in_range("data.overlay", self.overlay, 0.0, 1.0)
        _in_range("data.second_view", self.second_view, 0.0, 1.0)
        _in_range("data.canvas", self.canvas, 0.0, 1.0)
        _require(self.overlay == 0 or self.view == "rare_subclass", "data.overlay",
                 f"applies to data.view rare_subclass, not {self.view!r}", self.overlay)
        if self.name in GENERATED_IMAGE_DATASET_NAMES:
            _require(self.view == "none", "data.view",
                     f"{self.name} makes its own rare points (data.rho); views do not apply",
                     self.view)
            _in_range("data.num_classes", self.num_classes, 2, 5)
            for name in ("max_train", "max_test"):
                _require(getattr(self, name) is None, self._key(name),
                         f"caps loaded data sets; {self.name!r} draws data.n_train and "
                         f"data.n_test points", getattr(self, name))
        if self.view in ("multi_view", "colored"):
            _require(self.name == "mnist5k", "data.view",
                     f"{self.view} is built on mnist5k, not {self.name!r}", self.view)
        if not self.is_image:
            images = f"(image data sets: {list(IMAGE_DATASET_NAMES)})"
            _require(self.view == "none", "data.view",
                     f"only image data sets have views, not {self.name!r} {images}", self.view)
            _require(not self.augment, "data.augment",
                     f"only image data sets are augmented, not {self.name!r} {images}", self.augment)
            for name in ("max_train", "max_test"):
                _require(getattr(self, name) is None, self._key(name),
                         f"caps image data sets; {self.name!r} draws data.n_train and "
                         f"data.n_test points", getattr(self, name))

    @property
    def sigma_p(self) -> float:
        return 4.0 / math.sqrt(self.dim) if self.noise_std is None else self.noise_std

    @property
    def is_image(self) -> bool:
        """True for real image data sets (uint8 N×C×H×W inputs), False for the patch task."""
        return self.name in IMAGE_DATASET_NAMES or self.name in GENERATED_IMAGE_DATASET_NAMES


@dataclass(frozen=True)
class ModelConfig(_Section):
    """The network: by default the paper's two-layer patch CNN, F_k(x) = Σ_r Σ_p σ(<w_kr, x_p>)."""

    section: ClassVar[str] = "model"
    name: str = "patch_cnn"
    width: int = 10  # patch_cnn: m, filters per class
    power: int = 3  # patch_cnn: q in σ(z) = max(0, z)^q
    init_std: float = 0.01  # patch_cnn: std of the Gaussian initial filters
    # Image models: channels of the first stage, doubled at each later stage; None means the
    # architecture's reference (64 for preact_resnet18, 32 for small_cnn).
    channels: int | None = None

    def __post_init__(self) -> None:
        _require(self.name in MODEL_NAMES, "model.name", f"unknown model (known: {list(MODEL_NAMES)})",
                 self.name)
        _in_range("model.width", self.width, 1, 100_000)
        _in_range("model.power", self.power, 1, 10)
        _in_range("model.init_std", self.init_std, 0.0, 10.0, open_lo=True)
        if self.channels is not None:
            _in_range("model.channels", self.channels, 1, 4096)


Schedule = Literal["constant", "multistep", "cosine"]


@dataclass(frozen=True)
class OptimConfig(_Section):
    """Gradient descent: full batch when ``batch_size`` is None, else minibatch SGD."""

    section: ClassVar[str] = "optim"
    lr: float = 0.5  # the initial learning rate
    epochs: int = 1000  # with full-batch GD one epoch is one step
    batch_size: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    # Learning rate by epoch e of E = optim.epochs (see mixup_core.schedule.learning_rate):
    # constant; multistep: ×0.1 from e >= E/2 and again from e >= 3E/4 (100 and 150 of 200);
    # cosine: lr·(1 + cos(π e / E)) / 2.
    schedule: Schedule = "constant"

    def __post_init__(self) -> None:
        _in_range("optim.lr", self.lr, 0.0, MAX_LR, open_lo=True)
        _in_range("optim.epochs", self.epochs, 1, math.inf)
        _at_most("optim.epochs", self.epochs, MAX_EPOCHS)
        if self.batch_size is not None:
            _in_range("optim.batch_size", self.batch_size, 1, math.inf)
        _in_range("optim.momentum", self.momentum, 0.0, 1.0)
        _in_range("optim.weight_decay", self.weight_decay, 0.0, MAX_LR)
        _require(self.schedule in get_args(Schedule), "optim.schedule",
                 f"must be one of {list(get_args(Schedule))}", self.schedule)


StopMode = Literal["switch_to_erm", "end_training"]


@dataclass(frozen=True)
class MixupConfig(_Section):
    """How inputs and labels are mixed, and until when."""

    section: ClassVar[str] = "mixup"
    alpha: float = 1.0  # λ ~ Beta(α, α); 0 means no mixing (standard training, ERM)
    label_scheme: str = "same"  # how the label coefficient g follows λ; see mixup_core.schemes
    label_param: float | None = None  # the scheme's numeric parameter; None means its default
    fold: bool = False  # fold λ to [0.5, 1] (the paper's notation: λ weighs the dominant input)
    stop_epoch: int | None = None  # Mixup only for epochs < stop_epoch; None means always
    # switch_to_erm: standard training for the rest of the budget (early-stopped Mixup);
    # end_training: the whole run ends at stop_epoch.
    stop_mode: StopMode = "switch_to_erm"

    def __post_init__(self) -> None:
        _in_range("mixup.alpha", self.alpha, 0.0, math.inf)
        _require(self.label_scheme in LABEL_SCHEME_NAMES, "mixup.label_scheme",
                 f"unknown label scheme (known: {list(LABEL_SCHEME_NAMES)})", self.label_scheme)
        param = LABEL_SCHEME_PARAMS[self.label_scheme]
        _require(param is not None or self.label_param is None, "mixup.label_param",
                 f"scheme {self.label_scheme!r} takes no parameter (leave it null)", self.label_param)
        if param is not None and self.label_param is not None:
            _in_range("mixup.label_param", self.label_param, *param.range)
        if self.stop_epoch is not None:
            _in_range("mixup.stop_epoch", self.stop_epoch, 0, math.inf)
        _require(self.stop_mode in get_args(StopMode), "mixup.stop_mode",
                 f"must be one of {list(get_args(StopMode))}", self.stop_mode)


Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "float32", "bfloat16"]


@dataclass(frozen=True)
class TrialConfig:
    """Everything one training run depends on; the seed drives every random draw."""

    seed: int = 0
    log_every: int = 10  # report metrics every this many epochs (and at the last one)
    device: Device = "auto"  # auto: CUDA when available, else CPU
    # auto: image models on CUDA run in bfloat16 autocast with channels-last tensors, the patch
    # task in float32; float32: always float32; bfloat16 (patch CNN only): both GEMMs of a step
    # on bfloat16 copies of filters and data, float32 master weights and everything else.
    precision: Precision = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)

    def __post_init__(self) -> None:
        _in_range("seed", self.seed, 0, 2**63 - 1)
        _in_range("log_every", self.log_every, 1, math.inf)
        _require(self.device in get_args(Device), "device", f"must be one of {list(get_args(Device))}",
                 self.device)
        _require(self.precision in get_args(Precision), "precision",
                 f"must be one of {list(get_args(Precision))}", self.precision)
        if self.precision == "bfloat16" and self.model.name != "patch_cnn":
            raise ConfigError(f"precision: bfloat16 is for the patch CNN; image models use auto "
                              f"(bfloat16 autocast on CUDA), got 'bfloat16' with model.name "
                              f"{self.model.name!r}")
        if not self.data.is_image:
            self._check_tensor_sizes()
        wants = MODEL_INPUTS.get(self.model.name)
        gives = "images" if self.data.is_image else "patches"
        if wants is not None and wants != gives:
            fitting = sorted(name for name, kind in MODEL_INPUTS.items() if kind == gives)
            raise ConfigError(
                f"model.name: {self.model.name!r} takes {wants} but data.name {self.data.name!r} "
                f"gives {gives} (models for it: {fitting}), got {self.model.name!r}"
            )

    def _check_tensor_sizes(self) -> None:
        d = self.data
        values = (d.n_train + d.n_val + d.n_test) * d.num_patches * d.dim
        _require(values <= MAX_TENSOR_VALUES, "data.dim",
                 f"(data.n_train + data.n_val + data.n_test) × data.num_patches × data.dim = "
                 f"{values:,} values "
                 f"({values * 4 / 1e9:,.1f} GB); the limit is {MAX_TENSOR_VALUES:,} (1 GB)", d.dim)
        filters = d.num_classes * self.model.width * d.dim
        _require(filters <= MAX_TENSOR_VALUES, "model.width",
                 f"data.num_classes × model.width × data.dim = {filters:,} filter weights; the "
                 f"limit is {MAX_TENSOR_VALUES:,}", self.model.width)

    def replace(self, **flat_updates: Any) -> TrialConfig:
        """A copy with some dotted keys changed, e.g. ``cfg.replace(**{"mixup.alpha": 0.0})``."""
        return from_flat({**to_flat(self), **flat_updates})

    @property
    def epochs_to_train(self) -> int:
        """The training budget, shortened when Mixup's stop also ends training."""
        stop = self.mixup.stop_epoch
        if self.mixup.stop_mode == "end_training" and stop is not None and self.mixup.alpha > 0:
            return min(self.optim.epochs, max(stop, 1))
        return self.optim.epochs


def trains_as(config: TrialConfig) -> TrialConfig:
    """The one representative of every config that trains exactly like ``config``.

    Two configs with the same representative run the same computation, draw for draw, and
    report the same numbers, so a sweep runs only one of them. The rules follow
    :func:`mixup_core.schedule.mixup_active` and ``TrialConfig.epochs_to_train``:

    * Mixup never mixes when α = 0 or ``stop_epoch`` = 0: α, label scheme, label parameter, fold
      and stop mode are then irrelevant and the representative is standard training (α = 0).
      The one exception is ``stop_epoch: 0`` with ``stop_mode: end_training`` and α > 0, which
      trains a single epoch: it keeps its stop and mode (α = 1, the rest irrelevant).
    * A ``stop_epoch`` at or after ``optim.epochs`` never stops Mixup: it reads as None, and the
      stop mode is irrelevant whenever the stop is None.
    * A label parameter equal to its scheme's default reads as None (the default).

    Folding is never merged away: ``fold`` changes which input a draw weighs, not its law, so
    the draws differ even where the distributions agree.
    """
    mix = config.mixup
    param = LABEL_SCHEME_PARAMS[mix.label_scheme]
    default = None if param is None else param.default
    label_param = None if mix.label_param == default else mix.label_param
    stop = None if mix.stop_epoch is not None and mix.stop_epoch >= config.optim.epochs \
        else mix.stop_epoch
    if mix.alpha == 0 or stop == 0:
        if mix.alpha > 0 and mix.stop_mode == "end_training":
            canon = MixupConfig(alpha=1.0, stop_epoch=0, stop_mode="end_training")
        else:
            canon = MixupConfig(alpha=0.0)
    else:
        canon = dataclasses.replace(mix, label_param=label_param, stop_epoch=stop,
                                    stop_mode=mix.stop_mode if stop is not None
                                    else MixupConfig.stop_mode)
    return dataclasses.replace(config, mixup=canon)


_SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "mixup": MixupConfig,
}


@functools.cache
def _field_types(cls: type[Any]) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def flat_keys() -> list[str]:
    """Every dotted key a trial config accepts, in a stable order."""
    return list(to_flat(TrialConfig()))


def to_flat(config: TrialConfig) -> dict[str, Any]:
    """``{"seed": 0, "data.rho": 0.1, ...}``: every field, sections as dotted prefixes."""
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in _SECTIONS:
            for sub in dataclasses.fields(value):
                flat[f"{f.name}.{sub.name}"] = getattr(value, sub.name)
        else:
            flat[f.name] = value
    return flat


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Converts ``value`` to the field's type where that loses nothing (3.0 -> 3 for ints)."""
    args = set(get_args(annotation))
    if value is None:
        _require(type(None) in args, key, "must not be null", value)
        return None
    if annotation is bool or bool in args:
        _require(isinstance(value, bool), key, "expected true or false", value)
        return value
    if annotation is int or int in args:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        _require(isinstance(value, int) and not isinstance(value, bool), key,
                 "expected an integer", value)
        return value
    if annotation is float or float in args:
        _require(isinstance(value, (int, float)) and not isinstance(value, bool), key,
                 "expected a number", value)
        return float(value)
    if annotation is str or str in args or all(isinstance(a, str) for a in args):
        _require(isinstance(value, str), key, "expected a string", value)
        return value
    raise ConfigError(f"{key}: unsupported field type {annotation!r}")  # pragma: no cover


def _unknown_key(key: str) -> ConfigError:
    close = difflib.get_close_matches(key, flat_keys(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{key}: unknown config key{hint}")


def from_flat(flat: dict[str, Any]) -> TrialConfig:
    """Builds a config from dotted keys; missing keys take defaults, unknown keys are errors."""
    top_types = _field_types(TrialConfig)
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    top: dict[str, Any] = {}
    for key, value in flat.items():
        if not isinstance(key, str):
            raise ConfigError(f"{key!r}: config keys must be strings")
        head, _, rest = key.partition(".")
        if head in _SECTIONS and rest:
            types = _field_types(_SECTIONS[head])
            if rest not in types:
                raise _unknown_key(key)
            sections[head][rest] = _coerce(key, value, types[rest])
        elif key in top_types and key not in _SECTIONS:
            top[key] = _coerce(key, value, top_types[key])
        else:
            raise _unknown_key(key)
    built = {name: cls(**sections[name]) for name, cls in _SECTIONS.items()}
    return TrialConfig(**top, **built)


def flatten_nested(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"rho": 0.1}}`` -> ``{"data.rho": 0.1}``; dotted keys pass through."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_nested(value, prefix=f"{dotted}."))
        else:
            flat[dotted] = value
    return flat
