"""The report as one document model, rendered twice: report.md and a self-contained report.html.

Sections build :class:`Document` values (titles, paragraphs, tables, pictures, links) and know no
output format; the renderers here know no report. A link has a Markdown and an HTML target, so
report.md can link a run's report.md and report.html its report.html. Pictures are PNG files
beside report.md (``report_*.png``, saved by :func:`save_figure`), linked from the Markdown and
embedded as base64 in the HTML, so the HTML is one file to send.
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from brats_ssl import atomic
from brats_ssl.viz import DPI

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURE_PREFIX = "report_"


@dataclass(frozen=True)
class Link:
    text: str
    md_href: str
    html_href: str


@dataclass
class Table:
    headers: list[str]
    rows: Sequence[Sequence[str | Link]]
    caption: str = ""


@dataclass
class Picture:
    path: Path
    caption: str


@dataclass
class Section:
    title: str
    blocks: list[str | Table | Picture] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section]


def _md_cell(cell: str | Link) -> str:
    text = f"[{cell.text}]({cell.md_href})" if isinstance(cell, Link) else str(cell)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(document: Document, folder: Path) -> str:
    """Markdown text; pictures are linked relative to ``folder`` (where report.md lies)."""
    lines = [f"# {document.title}", ""]
    for section in document.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                lines.append("|" + "|".join(" --- " for _ in block.headers) + "|")
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                if block.caption:
                    lines += ["", f"*{block.caption}*"]
            elif isinstance(block, Picture):
                lines += [
                    f"![{block.caption}]({Path(os.path.relpath(block.path, folder)).as_posix()})",
                    "",
                    f"*{block.caption}*",
                ]
            else:
                lines.append(block)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1450px;
       margin: 1.5em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ccc; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
th { background: #f2f2f2; } td.text, th.text { text-align: left; }
code { font-size: 13px; background: #f4f4f4; padding: 0 3px; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .caption { font-size: 13px; color: #555; font-style: italic; }
"""


_NUMERIC = re.compile(r"^([+\-−]?\d|-$)")  # a number, a signed difference, or the missing mark


def _inline(text: str) -> str:
    """Escaped text with the report's Markdown marks kept as marks: **bold** and `code`."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _html_cell(cell: str | Link, tag: str, left: bool = False) -> str:
    inner = (
        f'<a href="{html.escape(cell.html_href)}">{html.escape(cell.text)}</a>'
        if isinstance(cell, Link)
        else _inline(str(cell))
    )
    attribute = ' class="text"' if left else ""
    return f"<{tag}{attribute}>{inner}</{tag}>"


def _text_columns(table: Table) -> list[bool]:
    """Columns of words (left-aligned) rather than numbers (right-aligned, the default); empty cells
    (a value that does not apply to a row) do not decide."""
    return [
        i == 0 or any(isinstance(c, Link) or (str(c).strip() and not _NUMERIC.match(str(c).strip())) for c in column)
        for i, column in enumerate(zip(*table.rows))
    ] or [False] * len(table.headers)


def render_html(document: Document) -> str:
    """One self-contained HTML page: pictures embedded as base64 PNG, styles inline."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(document.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(document.title)}</h1>",
    ]
    for section in document.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                text = _text_columns(block)
                parts.append(
                    "<table><thead><tr>"
                    + "".join(_html_cell(h, "th", left) for h, left in zip(block.headers, text))
                    + "</tr></thead><tbody>"
                )
                parts += [
                    "<tr>" + "".join(_html_cell(c, "td", left) for c, left in zip(row, text)) + "</tr>"
                    for row in block.rows
                ]
                parts.append("</tbody></table>")
                if block.caption:
                    parts.append(f'<p class="caption">{_inline(block.caption)}</p>')
            elif isinstance(block, Picture):
                data = base64.b64encode(block.path.read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.caption)}">'
                    f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
                )
            else:
                parts.append(f"<p>{_inline(block)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_document(document: Document, folder: Path) -> Path:
    """report.md and report.html in ``folder``; earlier ``report_*.png`` no longer shown are removed."""
    shown = {p.path.resolve() for s in document.sections for p in s.blocks if isinstance(p, Picture)}
    for old in folder.glob(f"{FIGURE_PREFIX}*.png"):
        if old.resolve() not in shown:
            old.unlink(missing_ok=True)
    atomic.write_text(folder / REPORT_HTML, render_html(document))
    return atomic.write_text(folder / REPORT_MD, render_markdown(document, folder))


def save_figure(figure: Figure, path: Path) -> Path:
    """A report figure as PNG at the pictures' common resolution (:data:`brats_ssl.viz.DPI`), atomically."""
    FigureCanvasAgg(figure)
    return atomic.write_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI), suffix=".png")
