"""HTML of a perflab document (perflab.report.document): the one HTML writer of the
reports and of the nightly index. Pages are self-contained: their style inline, no
resource fetched from elsewhere (figures bring plotly.js as the caller decides)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

from perflab.analysis.report_sections import ChartEntry
from perflab.report.document import Block, Bullets, Cell, Charts, Code, Heading, Numbered, Paragraph, Rule, Table

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; font-size: 0.92em; }
pre { background: #f4f4f4; padding: 0.6em; }
.figure { margin: 1em 0; }
.missing-chart, .muted { color: #777; }
.present { color: #b00020; font-weight: 600; }
.ok, .none { color: #1b7f3b; }
tr.bad { background: #fde8ea; }
tr.warn { background: #fff4d6; }
.warn { color: #8a5a00; font-weight: 600; }
"""

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def inline(text: str) -> str:
    """Escaped text with the document's inline markup: **bold**, `code`, [text](href)."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', out)
    return out.replace("  \n", "<br>\n")


def _cell(tag: str, c: str | Cell) -> str:
    if isinstance(c, Cell):
        attr = ' class="num"' if c.num else ""
        text = inline(c.text)
        if c.cls:
            text = f'<span class="{html.escape(c.cls)}">{text}</span>'
        return f"<{tag}{attr}>{text}</{tag}>"
    return f"<{tag}>{inline(c)}</{tag}>"


def render_body(blocks: Sequence[Block], charts: Sequence[ChartEntry] = (),
                figures_html: Mapping[str, str] | None = None) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{inline(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            cls = f' class="{html.escape(b.cls)}"' if b.cls else ""
            body.append(f"<p{cls}>{inline(b.text)}</p>")
        elif isinstance(b, Rule):
            body.append("<hr>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{inline(t)}</li>" for t in b.items) + "</ul>")
        elif isinstance(b, Numbered):
            items = []
            for t, subs in b.items:
                sub = "<ul>" + "".join(f"<li>{inline(s)}</li>" for s in subs) + "</ul>" if subs else ""
                items.append(f"<li>{inline(t)}{sub}</li>")
            body.append("<ol>" + "".join(items) + "</ol>")
        elif isinstance(b, Table):
            head = "".join(_cell("th", h) for h in b.head)
            rows = []
            for i, r in enumerate(b.rows):
                row_cls = b.row_classes[i] if i < len(b.row_classes) else None
                attr = f' class="{html.escape(row_cls)}"' if row_cls else ""
                rows.append(f"<tr{attr}>" + "".join(_cell("td", c) for c in r) + "</tr>")
            if not b.rows and b.empty:
                rows.append(f'<tr><td colspan="{len(b.head)}">{inline(b.empty)}</td></tr>')
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        elif isinstance(b, Code):
            body.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif isinstance(b, Charts):
            for c in (c for c in charts if c.section == b.section):
                if c.drawn and figures_html is not None:
                    body.append(f'<div class="figure">{figures_html[c.name]}</div>')
                else:
                    body.append(f'<p class="missing-chart">{inline(c.name)}: not drawn ({inline(c.reason or "")})</p>')
    return "\n".join(body)


def render_html(blocks: Sequence[Block], title: str, charts: Sequence[ChartEntry] = (),
                figures_html: Mapping[str, str] | None = None, head_extra: str = "") -> str:
    """A whole page. ``head_extra`` goes into <head> (e.g. the script tag loading plotly.js)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n{head_extra}</head>\n<body>\n"
            + render_body(blocks, charts, figures_html) + "\n</body>\n</html>\n")
