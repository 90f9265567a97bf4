"""Showing a result in a notebook: a figure, a table or a line saying why it is not there.

``show(chart, ...)`` draws a figure or a styled table (:func:`styled`: pandas Styler,
each value in its column's unit by perflab.fmt, no dtype rows or shape line), or says in one
line why the data is not there (a user's k6 file has no CPU samples, and a notebook must
still run to the end); ``text(df)``
renders a table as fixed plain text, for the few cells whose output is committed and
compared by nbval (see notebooks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import polars as pl
from IPython import display as ipython_display

from perflab import fmt
from perflab.errors import PerflabError
from perflab.notebook.setup import TEXT_CELL_CHARS
from perflab.notebook.subjects import Missing


def _missing_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Missing | None:
    """The first Missing among the arguments, one level into lists and tuples ([before, after])."""
    for a in (*args, *kwargs.values()):
        for item in a if isinstance(a, (list, tuple)) else (a,):
            if isinstance(item, Missing):
                return item
    return None


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or a :class:`Missing` when an argument is missing or the
    data is not there (PerflabError), so the cells after it still run."""
    gone = _missing_arg(args, kwargs)
    if gone is not None:
        return gone
    try:
        return fn(*args, **kwargs)
    except PerflabError as err:
        return Missing(str(err))


def show(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Draw ``fn(*args, **kwargs)``: a figure, a table, or markdown text. When the data
    is missing, print the one-line reason instead, so the notebook runs on to the end."""
    result = call(fn, *args, **kwargs)
    if isinstance(result, Missing):
        markdown(f"*Not shown ({getattr(fn, '__name__', 'chart')}): {result.reason}*")
    elif isinstance(result, go.Figure):
        result.show()
    elif isinstance(result, str):
        markdown(result)
    elif isinstance(result, pl.DataFrame):
        display(styled(result))
    else:
        display(result)


class Table:
    """A table as a notebook shows it: the Styler's HTML in JupyterLab and nbconvert's page,
    the same formatted cells as plain text where only text is read."""

    def __init__(self, html: str, plain: str) -> None:
        self.html, self.plain = html, plain

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.plain


# A fixed table id instead of pandas' random uuid: a stored output does not churn.
TABLE_UUID = "perflab"


def styled(df: pl.DataFrame) -> Table:
    """``df`` through pandas' Styler: every value as fmt.cell reads its column's name
    (``3,209 ms``, ``34.9 %``), numbers right-aligned, no index."""
    frame = df.to_pandas()
    numeric = [c for c, t in df.schema.items() if t.is_numeric()]

    def cell(column: str) -> Callable[[Any], str]:
        return lambda v: fmt.cell(None if v is None or v != v else v, column)  # NaN is pandas' null

    style = (frame.style.format({c: cell(c) for c in frame.columns}).hide(axis="index")
             .set_uuid(TABLE_UUID).set_properties(subset=numeric, **{"text-align": "right"}))
    plain = [[cell(c)(v) for c, v in zip(frame.columns, row, strict=True)] for row in frame.itertuples(index=False)]
    widths = [max(len(str(c)), *(len(r[i]) for r in plain)) if plain else len(str(c))
              for i, c in enumerate(frame.columns)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(frame.columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) if c in numeric else v.ljust(w)
                        for v, w, c in zip(r, widths, frame.columns, strict=True)) for r in plain]
    html: str = style.to_html()
    return Table(html, "\n".join(line.rstrip() for line in lines))


def display(obj: Any) -> None:
    """IPython's display (untyped), in one typed place."""
    show_obj: Callable[[Any], None] = ipython_display.display
    show_obj(obj)


def markdown(text: str) -> None:
    make: Callable[[str], Any] = ipython_display.Markdown
    display(make(text))


def print_table(fn: Callable[..., Any], *args: Any, columns: list[str] | None = None,
                limit: int | None = None, **kwargs: Any) -> None:
    """Print ``fn(...)`` (a DataFrame) as :func:`text`, or the reason it is missing."""
    result = call(fn, *args, **kwargs)
    if isinstance(result, Missing):
        print(f"not shown ({getattr(fn, '__name__', 'table')}): {result.reason}")
        return
    print(text(result.head(limit) if limit else result, columns))


def text(df: pl.DataFrame, columns: list[str] | None = None, decimals: int = 2) -> str:
    """A table as fixed plain text (markdown pipes, no dtypes, no shape line): the form of
    the committed outputs nbval compares."""
    frame = df.select(columns) if columns else df
    frame = frame.with_columns(
        [pl.col(c).round(decimals) for c, t in frame.schema.items() if t.is_float()]
        + [pl.col(c).str.replace_all(r"\s+", " ").str.slice(0, TEXT_CELL_CHARS)
           for c, t in frame.schema.items() if t == pl.String])
    with pl.Config(tbl_formatting="ASCII_MARKDOWN", tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True, tbl_rows=-1, tbl_cols=-1, tbl_width_chars=400,
                   fmt_str_lengths=TEXT_CELL_CHARS, float_precision=decimals, thousands_separator=False):
        return str(frame)
