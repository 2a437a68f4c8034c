"""A Document as one self-contained HTML page (inline CSS and SVG, no external reference) or as
Markdown."""

from __future__ import annotations

import re
from html import escape

from gpubox.document import Cost, Document, money

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1c2430;max-width:960px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:2px solid #d8dee8;padding-bottom:.2em;margin-top:1.6em}
p.summary{font-size:1.1em;background:#eef4fb;border-left:4px solid #2f6db5;padding:.6em .9em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.35em .6em;border-bottom:1px solid #e6e9ef}
th{width:13em;color:#4a5568;font-weight:600}td{word-break:break-word}p.note,footer{color:#5a6473;font-size:.9em}
svg text{font:14px system-ui,sans-serif}code{background:#f1f3f6;padding:0 .25em;border-radius:3px}
"""


def _chart(cost: Cost) -> str:
    """Two horizontal bars, expected and worst case per month, scaled to the larger."""
    width, left, bar = 640, 150, 30
    scale = (width - left - 110) / max(cost.worst, cost.expected, 0.01)
    parts = [f'<svg role="img" aria-label="Monthly cost: expected versus worst case" width="{width}" height="110" '
             f'viewBox="0 0 {width} 110">']
    for index, (label, amount, colour) in enumerate((("Expected", cost.expected, "#2f6db5"),
                                                     ("Worst case", cost.worst, "#c0392b"))):
        y = 15 + index * (bar + 20)
        length = max(2.0, amount * scale)
        parts.append(f'<text x="0" y="{y + 20}">{label} / month</text>'
                     f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" fill="{colour}" rx="3"/>'
                     f'<text x="{left + length + 8:.1f}" y="{y + 20}">{escape(money(amount))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _text(text: str) -> str:
    """Escaped, with `commands` shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def html(document: Document) -> str:
    body = [f"<h1>{escape(document.title)}</h1>", f'<p class="summary">{escape(document.summary)}</p>']
    for section in document.sections:
        body.append(f"<h2>{escape(section.title)}</h2>")
        if section.title == "Cost" and document.cost is not None:
            body.append(_chart(document.cost))
        rows = "".join(f"<tr><th>{escape(row.label)}</th><td>{_text(row.value)}</td></tr>" for row in section.rows)
        body.append(f"<table>{rows}</table>")
        if section.note:
            body.append(f'<p class="note">{_text(section.note)}</p>')
    body.append("<footer>" + "<br>".join(_text(line) for line in document.footer) + "</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(document.title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(document: Document) -> str:
    lines = [f"# {document.title}", "", document.summary, ""]
    for section in document.sections:
        lines += [f"## {section.title}", "", "| | |", "| --- | --- |"]
        lines += [f"| **{_cell(row.label)}** | {_cell(row.value)} |" for row in section.rows]
        lines += [""] + ([section.note, ""] if section.note else [])
    lines += [*document.footer, ""]
    return "\n".join(lines)


def render(document: Document, kind: str) -> str:
    return markdown(document) if kind == "md" else html(document)
