"""Bring your own: label schemes, models, data sets and metrics as plugins.

A plugin is a Python module that registers entries through this API::

    from mixup_core import plugins

    @plugins.label_scheme("sigmoid", param="k", default=8.0, range=(0.0, 100.0))
    def sigmoid(lam, *, param, resample):
        return torch.sigmoid(param * (lam - 0.5))

Four decorators, one per registry (the built-in entries sit in the same registries, so a plugin
entry is named, planned, trained packed, recorded and reported like a built-in one):

* :func:`label_scheme`: ``g = fn(lam, *, param, resample)``, vectorised over a tensor of λ
  (``resample()`` draws fresh coefficients from λ's law with the member's mixing generator);
  checked on a probe batch when registered: g must have λ's shape and stay in [0, 1].
* :func:`model`: ``builder(model_config, data, generator) -> nn.Module`` for ``images`` (or
  ``patches``); packs in the autograd engine when its layers have a grouped form.
* :func:`dataset`: ``loader(data_config) -> LabelledImages`` (uint8 N×C×H×W), optionally with
  ``rare_train``/``rare_test`` subgroup flags; the views apply to it like to the built-in sets.
* :func:`metric`: ``fn(logits, labels, rare) -> float`` on one member's evaluation of a split,
  reported as ``val/<name>`` and ``test/<name>`` at every logged epoch.

Plugins are named in a sweep spec (``plugins: [my_pkg.mixup_ext, ./ext.py, ./ext_dir]``) and
loaded by :func:`load`, or installed as an entry point of the group ``mixup_sweeps.plugins``
(loaded by :func:`load_installed`). Registering a name twice is an error naming both places.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mixup_core import catalog
from mixup_core.catalog import InputKind, LabelParam
from mixup_core.config import TrialConfig
from mixup_core.data import DATASETS, IMAGE_SOURCES, ImageSource, LabelledImages
from mixup_core.data.images import image_builder
from mixup_core.errors import ConfigError
from mixup_core.models import MODEL_INPUTS, MODELS, ModelBuilder
from mixup_core.plugin_specs import ENTRY_POINT_GROUP, is_path, module_name, resolve
from mixup_core.registry import Registry
from mixup_core.schemes import LABEL_SCHEMES, LabelScheme

BUILT_IN = "mixup_core (built-in)"


class PluginError(ConfigError):
    """A plugin that cannot be loaded or breaks a contract: one line, exit 2."""


@dataclass(frozen=True)
class Entry:
    """One registered entry: its kind, name, the plugin (module) that registered it and where."""

    kind: str
    name: str
    plugin: str
    where: str


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its module name, version (a package version, or ``sha256:<12 hex>`` of
    its source files), origin (``path``, ``module`` or ``entry point``) and source location."""

    name: str
    version: str
    origin: str
    location: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


ENTRIES: dict[tuple[str, str], Entry] = {}
LOADED: dict[str, PluginInfo] = {}
#: Metric functions by name: fn(logits (N, K), labels (N,), rare (N,)) -> float.
METRICS: dict[str, Callable[[Tensor, Tensor, Tensor], float]] = {}


def _where(fn: Any) -> tuple[str, str]:
    """(module, "file:line") of ``fn``."""
    module = getattr(fn, "__module__", "?") or "?"
    try:
        file = inspect.getsourcefile(fn) or "?"
        line = inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        file, line = "?", 0
    return module, f"{file}:{line}"


def _claim(kind: str, name: str, fn: Any, existing: Iterable[str]) -> Entry:
    module, where = _where(fn)
    entry = Entry(kind, name, module, where)
    old = ENTRIES.get((kind, name))
    if old is not None or name in existing:
        if old is None:  # a built-in: named by where it is defined
            built_in = existing.get(name) if isinstance(existing, (Registry, dict)) else None
            if kind == "data set" and name in IMAGE_SOURCES:
                built_in = IMAGE_SOURCES.get(name).load
            old_module, old_where = _where(built_in) if built_in is not None else (BUILT_IN, "?")
            old = Entry(kind, name, old_module, old_where)
        before = f"{old.plugin} ({old.where})"
        raise PluginError(f"plugins: {kind} {name!r} is registered twice: by {before} and by "
                          f"{module} ({where})")
    return entry


def _record(entry: Entry) -> None:
    ENTRIES[(entry.kind, entry.name)] = entry


# -- label schemes

PROBE_LAMBDAS = 33


def _probe_scheme(name: str, scheme: LabelScheme) -> None:
    """Raises PluginError unless ``scheme`` maps a probe batch of λ to g of λ's shape in [0, 1]."""
    generator = torch.Generator().manual_seed(0)
    lam = torch.cat([torch.linspace(0, 1, PROBE_LAMBDAS),
                     torch.distributions.Beta(1.0, 1.0).sample((PROBE_LAMBDAS,))])

    def resample() -> Tensor:
        return torch.rand(lam.shape, generator=generator)

    try:
        g = scheme.label_weights(lam, resample)
    except Exception as err:  # a scalar-only function fails on a tensor
        raise PluginError(f"plugins: label scheme {name!r} is not vectorised: on a probe batch of "
                          f"{len(lam)} λ values it raised {type(err).__name__}: {err}") from None
    if not isinstance(g, Tensor) or g.shape != lam.shape:
        shape = tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__
        raise PluginError(f"plugins: label scheme {name!r} is not vectorised: {len(lam)} λ values "
                          f"gave {shape}, not a tensor of shape {tuple(lam.shape)}")
    bad = ~((g >= 0) & (g <= 1))
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0])
        raise PluginError(f"plugins: label scheme {name!r}: g must stay in [0, 1]; the probe batch "
                          f"gave g = {float(g[i]):.4g} at λ = {float(lam[i]):.4g}")


def label_scheme(name: str, *, param: str | None = None, default: float | None = None,
                 range: tuple[float, float] = (-math.inf, math.inf),
                 summary: str = "") -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Registers ``fn(lam, *, param, resample) -> g`` as the label scheme ``name``; ``param``
    names its one numeric parameter (default ``default``, valid on the closed ``range``)."""
    if (param is None) != (default is None):
        raise PluginError(f"plugins: label scheme {name!r}: give both param and default, or neither")

    def add(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        entry = _claim("label scheme", name, fn, LABEL_SCHEMES)
        scheme_cls: type[LabelScheme] = type(f"Plugin_{name}", (LabelScheme,), {
            "param_name": param, "param_default": default, "param_range": range,
            "summary": summary or (fn.__doc__ or "").strip().split("\n")[0],
            "label_weights": lambda self, lam, resample: fn(lam, param=self.param,
                                                            resample=resample),
        })
        probes: list[float | None] = [None]
        if default is not None:
            probes = [*sorted({float(default), *(v for v in range if math.isfinite(v))})]
        for value in probes:
            _probe_scheme(name, scheme_cls(value))
        LABEL_SCHEMES.register(name)(scheme_cls)
        catalog.add_label_scheme(name, None if param is None or default is None
                                 else LabelParam(param, float(default), range))
        _record(entry)
        return fn

    return add


# -- models

def model(name: str, *, inputs: InputKind = "images") -> Callable[[ModelBuilder], ModelBuilder]:
    """Registers ``builder(model_config, data, generator) -> nn.Module`` as the model ``name``,
    reading images (n, C, H, W); it trains in the autograd engine, packed by ``torch.func``
    (the paper's patch task trains in the closed-form engine, for its own model only)."""
    if inputs != "images":
        raise PluginError(f"plugins: model {name!r}: plugin models read images; the patch task "
                          f"trains its closed-form model (patch_cnn) only")

    def add(builder: ModelBuilder) -> ModelBuilder:
        entry = _claim("model", name, builder, MODELS)
        MODELS.register(name)(builder)
        MODEL_INPUTS[name] = inputs
        catalog.add_model(name, inputs)
        _record(entry)
        return builder

    return add


# -- data sets

def dataset(name: str, *, crop_padding: int = 0, flip: bool = False,
            ) -> Callable[[Callable[..., LabelledImages]], Callable[..., LabelledImages]]:
    """Registers ``loader(data_config) -> LabelledImages`` as the image data set ``name``;
    ``data.augment`` crops with ``crop_padding`` and flips where ``flip``."""

    def add(loader: Callable[..., LabelledImages]) -> Callable[..., LabelledImages]:
        entry = _claim("data set", name, loader, DATASETS)
        source = ImageSource(loader, crop_padding=crop_padding, flip=flip)
        IMAGE_SOURCES.register(name)(source)
        DATASETS.register(name)(image_builder(source))
        catalog.add_dataset(name)
        _record(entry)
        return loader

    return add


# -- metrics

def metric(name: str) -> Callable[[Callable[[Tensor, Tensor, Tensor], float]],
                                   Callable[[Tensor, Tensor, Tensor], float]]:
    """Registers ``fn(logits, labels, rare) -> float`` (one member, one split: logits (N, K),
    labels (N,), rare flags (N,)) as the metric ``name``, reported as ``val/<name>`` and
    ``test/<name>`` at every logged epoch."""
    if "/" in name or not name:
        raise PluginError(f"plugins: metric {name!r}: a metric name has no '/' (it is reported "
                          f"as val/{name.split('/')[-1]} and test/...)")

    def add(fn: Callable[[Tensor, Tensor, Tensor], float]) -> Callable[[Tensor, Tensor, Tensor], float]:
        entry = _claim("metric", name, fn, METRICS)
        METRICS[name] = fn
        catalog.add_metric(name)
        _record(entry)
        return fn

    return add


def metric_columns(split: str, logits: Tensor, y: Tensor, rare: Tensor) -> dict[str, Tensor]:
    """The plugin metrics of ``split`` for B' members' logits (B', N, K): (B',) each."""
    if not METRICS:
        return {}
    b, n = logits.shape[:2]
    y, rare = y.expand(b, n), rare.expand(b, n)
    return {f"{split}/{name}": torch.tensor([float(fn(logits[j], y[j], rare[j])) for j in range(b)],
                                             device=logits.device)
            for name, fn in METRICS.items()}


# -- loading

def _hash_files(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return "sha256:" + digest.hexdigest()[:12]


def _source_files(location: Path) -> list[Path]:
    return sorted(location.rglob("*.py")) if location.is_dir() else [location]


def _import_path(path: Path) -> Any:
    name = path.stem
    if name in sys.modules:
        return sys.modules[name]
    init = path / "__init__.py" if path.is_dir() else path
    if not init.exists():
        raise PluginError(f"plugins: {path} does not exist" if not path.exists() else
                          f"plugins: {path} is a folder without __init__.py")
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(path)] if path.is_dir() else None)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _version_of(module: Any) -> str:
    top = module.__name__.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    file = getattr(module, "__file__", None)
    if file is None:
        return "unknown"
    location = Path(file)
    return _hash_files(_source_files(location.parent if location.name == "__init__.py" else location))


def load(specs: Sequence[str], base: Path | None = None) -> list[PluginInfo]:
    """Imports the plugins a spec names (module names, or paths relative to ``base``), once
    each; returns what was loaded. A plugin that fails to import is one PluginError line."""
    infos = []
    for spec in specs:
        try:
            if is_path(spec):
                path = resolve(spec, base)
                name = path.stem
                if name not in LOADED:
                    if name not in sys.modules:
                        _import_path(path)
                    LOADED[name] = PluginInfo(name, _hash_files(_source_files(path)), "path",
                                              str(path))
            else:
                name = spec
                if name not in LOADED:
                    module = importlib.import_module(name)
                    LOADED[name] = PluginInfo(name, _version_of(module), "module",
                                              getattr(module, "__file__", None) or name)
        except PluginError:
            raise
        except BaseException as err:  # SyntaxError, ImportError, an error in its registrations
            lines = str(err).strip().splitlines() or [""]
            raise PluginError(f"plugins: {spec!r} failed to import: {type(err).__name__}: "
                              f"{lines[0][:300]}") from None
        infos.append(LOADED[name])
    return infos


def load_installed() -> list[PluginInfo]:
    """Loads every installed entry point of the group ``mixup_sweeps.plugins``, once."""
    infos = []
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        name = point.module
        if name not in LOADED:
            try:
                point.load()
            except BaseException as err:
                lines = str(err).strip().splitlines() or [""]
                raise PluginError(f"plugins: entry point {point.name!r} ({point.value}) failed to "
                                  f"import: {type(err).__name__}: {lines[0][:300]}") from None
            dist = point.dist
            version = dist.version if dist is not None else "unknown"
            LOADED[name] = PluginInfo(name, version, "entry point",
                                      f"{ENTRY_POINT_GROUP}:{point.name}")
        infos.append(LOADED[name])
    return infos


def changed(recorded: Iterable[dict[str, str]], base: Path | None = None) -> list[str]:
    """One line per recorded plugin whose code differs now (or that cannot be found)."""
    lines = []
    for info in recorded:
        name, version = info["name"], info["version"]
        try:
            if info["origin"] == "path":
                now = _hash_files(_source_files(Path(info["location"])))
            else:
                module = sys.modules.get(name) or importlib.import_module(name)
                now = _version_of(module)
        except BaseException as err:
            lines.append(f"plugin {name!r} cannot be found now ({type(err).__name__})")
            continue
        if now != version:
            lines.append(f"plugin {name!r} changed since the sweep started ({version} -> {now})")
    return lines


def registered() -> list[Entry]:
    """Every entry of every registry, built-ins included (the first plugin: they register in
    the same registries), by kind and name."""
    built_in: list[Entry] = []
    for kind, registry in (("label scheme", LABEL_SCHEMES), ("model", MODELS),
                           ("data set", DATASETS)):
        for name in registry:
            if (kind, name) not in ENTRIES:
                entry = registry.get(name)
                module, where = _where(entry)
                if kind == "data set" and name in IMAGE_SOURCES:
                    module, where = _where(IMAGE_SOURCES.get(name).load)
                built_in.append(Entry(kind, name, module, where))
    return sorted([*built_in, *ENTRIES.values()], key=lambda e: (e.kind, e.name))


def preflight(config: TrialConfig) -> list[str]:
    """Checks a trial config's plugin entries before a sweep starts: a plugin model must give
    (n, K) logits on the data's images (else PluginError, one line); returns note lines (a plugin
    data set without subgroup labels: its rare metrics are absent)."""
    notes: list[str] = []
    data_name, model_name = config.data.name, config.model.name
    if ("data set", data_name) not in ENTRIES and ("model", model_name) not in ENTRIES:
        return notes
    from mixup_core.data import build_data
    from mixup_core.models import build_model

    data = build_data(config.data, config.seed)
    if ("data set", data_name) in ENTRIES and config.data.view == "none" \
            and not bool(data.rare_train.any()) and not bool(data.rare_test.any()):
        notes.append(f"note: data set {data_name!r} gives no subgroup labels (rare_train, "
                     f"rare_test): */acc_rare and */acc_common are absent")
    if ("model", model_name) in ENTRIES:
        generator = torch.Generator().manual_seed(config.seed)
        net = build_model(config.model, data, generator)
        x = data.x_train[:2].float() / 255 if data.image is not None else data.x_train[:2]
        with torch.no_grad():
            out = net.eval()(x)
        if not isinstance(out, Tensor) or tuple(out.shape) != (len(x), data.num_classes):
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise PluginError(f"plugins: model {model_name!r} gives outputs of shape {shape} for "
                              f"{len(x)} inputs; data set {data_name!r} needs ({len(x)}, "
                              f"{data.num_classes}), one logit per class")
        _check_packs(config)
    return notes


def _check_packs(config: TrialConfig) -> None:
    """One minibatch step and one evaluation of a pack of two seeds of ``config``: a plugin
    model trains packed (``torch.func`` over stacked weights), so its forward must be
    functional; one PluginError line where it is not."""
    from mixup_core.training import Pack
    from mixup_core.training.autograd import AutogradGroup

    try:
        group = Pack([config.replace(seed=config.seed), config.replace(seed=config.seed + 1)]
                     ).groups[0]
        assert isinstance(group, AutogradGroup)
        group.step(max_batches=1)
        group.evaluate([0, 1])
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
        raise PluginError(f"plugins: model {config.model.name!r} does not train packed "
                          f"(torch.func over the members' stacked weights): "
                          f"{type(err).__name__}: {first[:200]}; its forward must be "
                          f"functional (no state kept in Python between calls)") from None


def format_listing() -> str:
    """What ``mixup-sweep plugins`` prints: every registered entry and every loaded plugin."""
    entries = registered()
    width = max(len(e.name) for e in entries)
    lines = ["Registered (kind, name, from):"]
    for e in entries:
        where = e.plugin if not e.where else f"{e.plugin} ({e.where})"
        lines.append(f"  {e.kind:<12}  {e.name:<{width}}  {where}")
    lines.append("Plugins loaded:" if LOADED else "Plugins loaded: none")
    for info in sorted(LOADED.values(), key=lambda i: i.name):
        lines.append(f"  {info.name}  {info.version}  {info.origin}: {info.location}")
    return "\n".join(lines)


__all__ = [
    "ENTRY_POINT_GROUP",
    "Entry",
    "PluginError",
    "PluginInfo",
    "changed",
    "dataset",
    "format_listing",
    "is_path",
    "label_scheme",
    "load",
    "load_installed",
    "metric",
    "metric_columns",
    "model",
    "module_name",
    "preflight",
    "registered",
]
