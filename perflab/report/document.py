"""The document model every perflab page is written in: a list of blocks, rendered as
markdown (perflab.report.markdown) or HTML (perflab.report.html).

Inline markup inside any text: ``**bold**``, `` `code` `` and ``[text](href)``, nothing
else. A table cell may be a :class:`Cell` to carry a style class (``present``, ``ok``,
``muted``, ``num``...) that HTML shows and markdown ignores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    cls: str | None = None  # an HTML class (e.g. "muted")


@dataclass(frozen=True)
class Rule:
    """A horizontal rule between parts."""


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Numbered:
    """A numbered list whose items may carry sub-bullets."""

    items: list[tuple[str, list[str]]]


@dataclass(frozen=True)
class Cell:
    """A table cell with a style: ``cls`` marks its text (``present``, ``ok``, ``muted``...),
    ``num`` aligns it right as a number."""

    text: str
    cls: str | None = None
    num: bool = False


@dataclass(frozen=True)
class Table:
    head: Sequence[str]
    rows: Sequence[Sequence[str | Cell]]
    row_classes: Sequence[str | None] = field(default_factory=list)  # per row, for HTML
    empty: str = ""  # what a table without rows says (HTML shows it as one row)


@dataclass(frozen=True)
class Code:
    text: str
    lang: str = "bash"


@dataclass(frozen=True)
class Charts:
    """Where the charts of a section go (the report's figures are drawn apart, then placed)."""

    section: str


Block = Heading | Paragraph | Rule | Bullets | Numbered | Table | Code | Charts


def cell_text(c: str | Cell) -> str:
    return c.text if isinstance(c, Cell) else c
