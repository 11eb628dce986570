"""How a figure spreads a sweep's configuration groups over panels, colours and legends.

A sweep varies a few config keys. A figure shows one of them as the line colour (the *hue*,
by preference the switch-off epoch), up to two discrete ones as panel rows and columns (by
preference label scheme and α), and holds the others at the best configuration's value
(*pinned*) or, when they take too many values to pin (a continuous search), names them in
the legend (*folded*). ERM groups are drawn in every panel, as the reference they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib as mpl

from dashboards import labels as L
from dashboards.sweep_data import ConfigGroup, SweepData, value_order

#: A key with more values than this is continuous: never a panel row/column, never pinned.
MAX_FACET_VALUES = 6
#: Most lines in one panel (the best by the objective, ERM aside).
MAX_LINES = 8
ERM_COLOUR = "black"


@dataclass(frozen=True)
class Layout:
    """Which varying key goes where in a figure.

    Attributes:
        hue: The key shown as line colour (None: one line per group, no key to colour by).
        rows: The key of the panel rows (None: one row).
        cols: The key of the panel columns (None: one column).
        pinned: Keys held at one value (the best configuration's), with that value.
        folded: Continuous keys named in each line's legend entry.
    """

    hue: str | None
    rows: str | None
    cols: str | None
    pinned: dict[str, Any] = field(default_factory=dict)
    folded: tuple[str, ...] = ()

    def pinned_text(self) -> str:
        """"α = 1" etc. for a caption; "" when nothing is pinned."""
        return ", ".join(L.format_setting(k, v) for k, v in self.pinned.items())


def mixup_groups(data: SweepData) -> list[ConfigGroup]:
    return [g for g in data.groups if g.kind != "ERM"]


def erm_groups(data: SweepData) -> list[ConfigGroup]:
    return [g for g in data.groups if g.kind == "ERM"]


def key_values(groups: Sequence[ConfigGroup], key: str) -> list[Any]:
    """The distinct values of ``key`` among ``groups``, in display order."""
    seen: dict[str, Any] = {}
    for g in groups:
        seen.setdefault(repr(g.value(key)), g.value(key))
    return sorted(seen.values(), key=value_order)


def choose_layout(data: SweepData, *, hue: Sequence[str], rows: Sequence[str] = (),
                  cols: Sequence[str] = (), free: Sequence[str] = ()) -> Layout:
    """Assigns the keys that vary among the Mixup groups to hue, rows, columns, pins.

    Args:
        data: The sweep.
        hue: Keys to colour by, in order of preference; if none of them varies, the first
            varying key is the hue. Empty: no hue.
        rows: Keys for panel rows, in order of preference (only discrete keys qualify).
        cols: Keys for panel columns, likewise.
        free: Keys that must not be pinned (a figure shows them on an axis itself).
    """
    pool = mixup_groups(data) or data.groups
    keys = [k for k in data.varying if len(key_values(pool, k)) > 1 and k not in free]
    discrete = [k for k in keys if len(key_values(pool, k)) <= MAX_FACET_VALUES]

    def pick(preferred: Sequence[str], candidates: list[str]) -> str | None:
        chosen = next((k for k in preferred if k in candidates), None)
        if chosen is not None:
            candidates.remove(chosen)
        return chosen

    left = list(keys)
    hue_key = (pick(hue, left) or (left.pop(0) if left else None)) if hue else None
    row_key = pick(rows, [k for k in left if k in discrete])
    left = [k for k in left if k != row_key]
    col_key = pick(cols, [k for k in left if k in discrete])
    left = [k for k in left if k != col_key]
    best = data.best_group()
    pinned = {k: best.value(k) for k in left if k in discrete} if best is not None else {}
    folded = tuple(k for k in left if k not in pinned)
    return Layout(hue_key, row_key, col_key, pinned, folded)


def in_panel(group: ConfigGroup, layout: Layout, row: Any, col: Any) -> bool:
    """Whether ``group`` is drawn in the panel of (``row``, ``col``).

    ERM groups match every value of a ``mixup.*`` key, since those keys do not apply to them.
    """
    return _matches(group, _wanted(layout, row, col))


def _wanted(layout: Layout, row: Any, col: Any) -> dict[str, str]:
    """The ``repr`` of each key's value in the panel of (``row``, ``col``)."""
    wanted = dict(layout.pinned)
    if layout.rows is not None:
        wanted[layout.rows] = row
    if layout.cols is not None:
        wanted[layout.cols] = col
    return {key: repr(value) for key, value in wanted.items()}


def _matches(group: ConfigGroup, wanted: dict[str, str]) -> bool:
    for key, value in wanted.items():
        if group.kind == "ERM" and key.startswith(L.MIXUP_PREFIX):
            continue
        if repr(group.value(key)) != value:
            return False
    return True


def panel_groups(data: SweepData, layout: Layout, row: Any, col: Any
                 ) -> tuple[list[ConfigGroup], int]:
    """The groups of one panel, ERM first then in hue order, and how many were left out.

    At most ``MAX_LINES`` Mixup groups are kept: the best by the sweep's objective.
    """
    wanted = _wanted(layout, row, col)
    members = [g for g in data.groups if _matches(g, wanted)]
    erm = [g for g in members if g.kind == "ERM"]
    mixup = [g for g in members if g.kind != "ERM"]
    dropped = max(0, len(mixup) - MAX_LINES)
    if dropped:
        keep = {id(g) for g in sorted(mixup, key=data.order)[:MAX_LINES]}
        mixup = [g for g in mixup if id(g) in keep]
    hue = layout.hue
    if hue is not None:
        mixup.sort(key=lambda g: value_order(g.value(hue)))
    return erm + mixup, dropped


def line_label(group: ConfigGroup, layout: Layout) -> str:
    """The legend entry of a line: its hue value (the legend's title names the key), plus
    the folded keys in the paper's words."""
    if group.kind == "ERM":
        extra = [L.format_setting(k, group.value(k)) for k in layout.folded
                 if not k.startswith(L.MIXUP_PREFIX)]
        return " · ".join([L.ERM, *extra])
    if layout.hue is None:
        return group.label
    parts = [L.format_value(layout.hue, group.value(layout.hue))]
    parts += [L.format_setting(k, group.value(k)) for k in layout.folded]
    return " · ".join(parts)


def hue_colours(data: SweepData, layout: Layout) -> dict[str, Any]:
    """A colour per hue value (by ``repr``), ordered along viridis; ERM is black."""
    if layout.hue is None:
        return {}
    values = [v for v in key_values(mixup_groups(data), layout.hue) if v != L.ERM]
    cmap = mpl.colormaps["viridis"]
    n = max(len(values) - 1, 1)
    colours: dict[str, Any] = {repr(L.ERM): ERM_COLOUR}
    for i, value in enumerate(values):
        colours[repr(value)] = cmap(0.9 * i / n)
    return colours


def colour_of(group: ConfigGroup, layout: Layout, colours: dict[str, Any], index: int) -> Any:
    """The line colour of ``group``: ERM black, else its hue value's colour."""
    if group.kind == "ERM":
        return ERM_COLOUR
    if layout.hue is None:
        return mpl.colormaps["tab10"](index % 10)
    return colours.get(repr(group.value(layout.hue)), "grey")


def facet_values(data: SweepData, key: str | None) -> list[Any]:
    """The panel values along one facet key (``[None]`` for no key)."""
    if key is None:
        return [None]
    return key_values(mixup_groups(data) or data.groups, key)


def panel_title(layout: Layout, row: Any, col: Any) -> str:
    parts = []
    if layout.rows is not None:
        parts.append(L.format_setting(layout.rows, row))
    if layout.cols is not None:
        parts.append(L.format_setting(layout.cols, col))
    return ", ".join(parts)
