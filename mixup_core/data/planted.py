"""``planted_glyphs``: the paper's feature-noise data model drawn on real pixels.

Every point is a 28×28 uint8 image of a class y in 0..K-1 (``data.num_classes``, 2 to 5):

* **canvas** (the memorisable, point-by-point noise): a random MNIST-5k digit of any class,
  unrelated to y, at intensity σ = ``data.canvas``;
* **feature**: an 8×8 scikit-learn digit glyph (a random real instance) added into one of nine
  8×8 cells of the canvas. Class k's *common* glyph is digit k; its *rare* glyph is digit K + k,
  carried instead by a fraction ``data.rho`` of the class's training points;
* **feature noise**: the common glyph of another class (uniform over the K - 1 others) at
  intensity α_fn = ``data.feature_noise``, in another cell.

Pixels are ``clip(σ·canvas + glyph + α_fn·noise_glyph, 0, 255)``. Training and validation points
take their canvases and glyphs from the training splits of MNIST-5k and of the digits, test
points and probes from the test splits, so no test image or glyph instance is ever trained on.
Each class has ``n // K`` points (the first ``n % K`` classes one more); the rare ones are
``round(rho · n_k)`` of each class's training points and a fraction ``data.test_rare_fraction``
(None: ``rho``) of each class's validation and test points, so split sizes and rare counts never
depend on the seed. The DATA generator draws the training points, the test points and the
probes, in that order; the VAL generator the validation points.

Probes, evaluated at every logged epoch (``probe/<name>``, :class:`~mixup_core.data.base.TaskData`):

* ``rare_glyph``: for each class, 50 clean rare glyphs (test instances) on an empty canvas in a
  random cell, no feature noise: has the network learned the rare feature itself?
* ``memorise``: the rare training points rendered again with their glyph erased (same canvas,
  same feature noise): does the network still give them their label? The only glyph left is
  the feature noise, another class's, so a network that reads glyphs says that class; one that
  still gives the label has memorised the canvases (the paper's noise memorisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mixup_core.data.base import ImageSpec, TaskData
from mixup_core.data.image_sources import channel_stats, load_digits_images, load_mnist5k_images
from mixup_core.data.views import keep_count

if TYPE_CHECKING:
    from mixup_core.config import DataConfig

GLYPH = 8
#: Top-left corners of the nine 8×8 cells of the 28×28 canvas.
CELLS: tuple[tuple[int, int], ...] = tuple((r, c) for r in (2, 10, 18) for c in (2, 10, 18))
PROBE_PER_CLASS = 50
CROP_PADDING = 2


@dataclass(frozen=True)
class Sources:
    """Canvases (n, 28, 28) and glyph instances by digit (list of (m, 8, 8)), as float."""

    canvases: Tensor
    glyphs: list[Tensor]


@dataclass(frozen=True)
class Points:
    """What was drawn for a set of points: enough to render them again with changes."""

    y: Tensor
    rare: Tensor
    noise: Tensor
    canvas: Tensor  # (n, 28, 28) float, already scaled by sigma
    glyph: Tensor  # (n, 8, 8) float
    noise_glyph: Tensor  # (n, 8, 8) float, already scaled by alpha_fn
    cell: Tensor
    noise_cell: Tensor


def _sources(split: str) -> Sources:
    mnist, digits = load_mnist5k_images(None), load_digits_images(None)  # type: ignore[arg-type]
    x_canvas = mnist.x_train if split == "train" else mnist.x_test
    x_glyph, y_glyph = ((digits.x_train, digits.y_train) if split == "train"
                        else (digits.x_test, digits.y_test))
    return Sources(x_canvas[:, 0].float(),
                   [x_glyph[y_glyph == d, 0].float() for d in range(10)])


def _pick(pool: Tensor, n: int, generator: torch.Generator) -> Tensor:
    return pool[torch.randint(len(pool), (n,), generator=generator)]


def _instances(glyphs: list[Tensor], digits: Tensor, generator: torch.Generator) -> Tensor:
    """A uniformly random instance of each entry of ``digits`` (n,), as (n, 8, 8)."""
    counts = torch.tensor([len(g) for g in glyphs])
    offsets = torch.cumsum(counts, 0) - counts
    which = (torch.rand(len(digits), generator=generator, dtype=torch.float64)
             * counts[digits]).long()
    return torch.cat(glyphs)[offsets[digits] + which]


def _two_cells(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    first = torch.randint(len(CELLS), (n,), generator=generator)
    second = (first + torch.randint(1, len(CELLS), (n,), generator=generator)) % len(CELLS)
    return first, second


def class_counts(n: int, k: int) -> list[int]:
    return [n // k + (c < n % k) for c in range(k)]


def draw_points(sources: Sources, n: int, config: DataConfig, rare_fraction: float,
                generator: torch.Generator) -> Points:
    """``n`` points of ``config.num_classes`` balanced classes, ``keep_count(rare_fraction, n_k)``
    rare ones in each class (a random subset), everything else drawn as the module doc says."""
    k = config.num_classes
    counts = class_counts(n, k)
    y = torch.repeat_interleave(torch.arange(k), torch.tensor(counts))
    rare = torch.zeros(n, dtype=torch.bool)
    start = 0
    for count in counts:
        chosen = torch.randperm(count, generator=generator)[:keep_count(rare_fraction, count)]
        rare[start + chosen] = True
        start += count
    noise = (y + torch.randint(1, k, (n,), generator=generator)) % k
    canvas = _pick(sources.canvases, n, generator) * config.canvas
    glyph = _instances(sources.glyphs, torch.where(rare, y + k, y), generator)
    noise_glyph = _instances(sources.glyphs, noise, generator) * config.feature_noise
    cell, noise_cell = _two_cells(n, generator)
    return Points(y, rare, noise, canvas, glyph, noise_glyph, cell, noise_cell)


def render(canvas: Tensor, pastes: list[tuple[Tensor, Tensor]]) -> Tensor:
    """uint8 (n, 1, 28, 28): ``canvas`` (n, 28, 28) plus each (glyphs (n, 8, 8), cells (n,))."""
    image = canvas.clone()
    for glyphs, cells in pastes:
        for index, (r, c) in enumerate(CELLS):
            rows = torch.nonzero(cells == index).flatten()
            image[rows, r:r + GLYPH, c:c + GLYPH] += glyphs[rows]
    return image.clamp(0, 255).round().to(torch.uint8).unsqueeze(1)


def render_points(points: Points, *, glyph: bool = True) -> Tensor:
    pastes = [(points.noise_glyph, points.noise_cell)]
    if glyph:
        pastes.insert(0, (points.glyph, points.cell))
    return render(points.canvas, pastes)


def rare_glyph_probe(sources: Sources, k: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """PROBE_PER_CLASS clean rare glyphs of each class on an empty canvas."""
    y = torch.arange(k).repeat_interleave(PROBE_PER_CLASS)
    glyphs = _instances(sources.glyphs, y + k, generator)
    cells = torch.randint(len(CELLS), (len(y),), generator=generator)
    return render(torch.zeros(len(y), 28, 28), [(glyphs, cells)]), y


def make_planted_glyphs(config: DataConfig, generator: torch.Generator,
                        val_generator: torch.Generator) -> TaskData:
    """The ``planted_glyphs`` task of ``config`` (see the module doc)."""
    train_sources, test_sources = _sources("train"), _sources("test")
    evaluation_rare = config.rho if config.test_rare_fraction is None else config.test_rare_fraction
    train = draw_points(train_sources, config.n_train, config, config.rho, generator)
    test = draw_points(test_sources, config.n_test, config, evaluation_rare, generator)
    probe_x, probe_y = rare_glyph_probe(test_sources, config.num_classes, generator)
    val = draw_points(train_sources, config.n_val, config, evaluation_rare, val_generator)
    x_train = render_points(train)
    rare_rows = torch.nonzero(train.rare).flatten()
    erased = Points(*(getattr(train, f)[rare_rows] for f in Points.__dataclass_fields__))
    mean, std = channel_stats(x_train)
    return TaskData(
        x_train=x_train, y_train=train.y, rare_train=train.rare,
        x_test=render_points(test), y_test=test.y, rare_test=test.rare,
        x_val=render_points(val), y_val=val.y, rare_val=val.rare,
        num_classes=config.num_classes,
        image=ImageSpec(mean=mean, std=std, crop_padding=CROP_PADDING, flip=False),
        noise_train=train.noise, noise_val=val.noise, noise_test=test.noise,
        probes={"rare_glyph": (probe_x, probe_y),
                "memorise": (render_points(erased, glyph=False), erased.y)},
    )


__all__ = ["CELLS", "PROBE_PER_CLASS", "Points", "class_counts", "draw_points",
           "make_planted_glyphs", "render", "render_points"]
