"""Markdown of a perflab document (perflab.report.document)."""

from __future__ import annotations

from collections.abc import Sequence

from perflab.analysis.report_sections import ChartEntry
from perflab.report.document import Block, Bullets, Charts, Code, Heading, Numbered, Paragraph, Rule, Table, cell_text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], charts: Sequence[ChartEntry] = ()) -> str:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Paragraph):
            lines += [b.text, ""]
        elif isinstance(b, Rule):
            lines += ["---", ""]
        elif isinstance(b, Bullets):
            lines += [f"- {t}" for t in b.items] + [""]
        elif isinstance(b, Numbered):
            for i, (t, subs) in enumerate(b.items, 1):
                lines.append(f"{i}. {t}")
                lines += [f"   - {s}" for s in subs]
            lines.append("")
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(b.head) + " |")
            lines.append("|" + "|".join("---" for _ in b.head) + "|")
            lines += ["| " + " | ".join(_cell(cell_text(c)) for c in r) + " |" for r in b.rows]
            if not b.rows and b.empty:
                lines.append("| " + " | ".join([b.empty] + [""] * (len(b.head) - 1)) + " |")
            lines.append("")
        elif isinstance(b, Code):
            lines += [f"```{b.lang}", b.text, "```", ""]
        elif isinstance(b, Charts):
            mine = [c for c in charts if c.section == b.section]
            if mine:
                lines.append("**Charts:**")
                for c in mine:
                    if c.png:
                        lines.append(f"- [{c.title}]({c.png})")
                    elif c.drawn:
                        lines.append(f"- {c.title}: in report.html (`#{c.div_id}`)")
                    else:
                        lines.append(f"- {c.name}: not drawn ({c.reason})")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"
