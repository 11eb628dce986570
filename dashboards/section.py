"""One section of the report: a figure (or a note saying why there is none) and its caption."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure


@dataclass
class Section:
    """A titled part of the report.

    Attributes:
        slug: Short stable name; the PNG file is ``<slug>.png``.
        title: The heading, in the paper's words.
        caption: What the figure shows and how to read it.
        figure: The figure, or None when the sweep cannot show it.
        note: Why there is no figure (None when there is one).
        html: Extra HTML placed after the figure (the best-configs table).
    """

    slug: str
    title: str
    caption: str
    figure: Figure | None = None
    note: str | None = None
    html: str | None = None


def skipped(slug: str, title: str, note: str) -> Section:
    """A section that shows a note in place of its figure."""
    return Section(slug=slug, title=title, caption="", note=note)
