"""A report as a list of blocks (headings, text, tables, images), rendered to Markdown and to one
self-contained HTML page (images embedded as base64)."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    """A paragraph; `backticks` mark code."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    """A table shown in the report; ``csv`` (and ``latex``, when written) are its files, relative to the
    report folder."""

    frame: pd.DataFrame
    csv: str
    latex: str | None = None
    together: tuple[str, ...] = ()
    """Columns of one quantity (an interaction's cells) formatted as one, beside :data:`TOGETHER`."""


@dataclass(frozen=True)
class Image:
    """A PNG, relative to the report folder."""

    path: str
    caption: str


Block = Heading | Text | Bullets | Table | Image


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def format_cell(value: object) -> str:
    """One value on its own: integers with thousands separators, other numbers to 4 significant digits,
    missing as empty. Columns of numbers are formatted together (:func:`format_column`)."""
    if _missing(value):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float) and float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


SIGNIFICANT = 4
"""Significant digits of a column's largest value; every other value of the column gets as many decimals."""

MAX_DECIMALS = 6


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _trim(texts: list[str], keep: int = 0) -> list[str]:
    """Drop the trailing zeros every one of ``texts`` (same number of decimals) has, keeping ``keep`` decimals."""
    fractions = [t.split(".", 1)[1] for t in texts if "." in t]
    if not fractions or len(fractions) < len(texts):
        return texts
    common = min(len(f) - len(f.rstrip("0")) for f in fractions)
    drop = min(common, len(fractions[0]) - keep)
    if drop <= 0:
        return texts
    return [t[:-drop].rstrip(".") for t in texts]


def _scientific(values: list[float]) -> list[str]:
    """``1e-04``, ``3.5e-03``: the fewest mantissa decimals (at most 3) that show every value to 4 digits."""
    texts = [f"{v:.{SIGNIFICANT - 1}e}" for v in values]
    mantissas = _trim([t.split("e")[0] for t in texts])
    return [f"{m}e{t.split('e')[1]}" for m, t in zip(mantissas, texts, strict=True)]


def _fixed(values: list[float], decimals: int) -> list[str]:
    texts = [f"{v:,.{decimals}f}" for v in values]
    texts = [t[1:] if t.startswith("-") and not t.strip("-0.,") else t for t in texts]  # no "-0.00"
    return _trim(texts, keep=min(1, decimals))


def _decimals(value: float, digits: int) -> int:
    """Decimals that show ``value`` (> 0) to ``digits`` significant digits."""
    return digits - math.ceil(math.log10(value))


def _format_numbers(values: list[float], integer: bool) -> list[str]:
    finite = [abs(v) for v in values if math.isfinite(v)]
    largest = max(finite, default=0.0)
    shown = [v for v in values if math.isfinite(v)]
    if integer and largest < 1e15:
        texts = [f"{int(v):,}" for v in shown]
    elif largest >= 1e15 or 0 < largest < 1e-3:
        texts = _scientific(shown)
    else:
        smallest = min((v for v in finite if v), default=largest)
        decimals = max(_decimals(largest, SIGNIFICANT), _decimals(smallest, 2)) if largest else 0
        fits = decimals <= MAX_DECIMALS
        texts = _fixed(shown, max(decimals, 0)) if fits else _scientific(shown)
    it = iter(texts)
    return [next(it) if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "") for v in values]


def format_column(column: pd.Series) -> list[str]:
    """A column's values formatted alike, so a column of numbers reads as one: integers (an integer column, or
    whole numbers of size 2 or more) with thousands separators; other numbers with the same decimals, enough
    for 4 significant digits of the largest value and 2 of the smallest, trailing zeros every value has
    dropped (``1.0000`` and ``0.9975``, not ``1`` and ``0.9975``; ``77,790`` and ``1,047``, not ``7.779e+04``
    and ``1047``); in scientific notation when that needs more than 6 decimals or the largest value is below
    1e-3. Missing values are empty; a column mixing text and numbers is formatted value by value
    (:func:`format_cell`)."""
    values = [_plain(v) for v in column.tolist()]
    present = [v for v in values if not _missing(v)]
    if not present or not all(_is_number(v) for v in present):
        return [format_cell(v) for v in values]
    numbers = [float(v) for v in present]
    whole = all(not math.isfinite(v) or v.is_integer() for v in numbers)
    largest = max((abs(v) for v in numbers if math.isfinite(v)), default=0.0)
    integer = whole and (pd.api.types.is_integer_dtype(column.dtype) or largest >= 2 or largest == 0)
    texts = iter(_format_numbers(numbers, integer))
    return ["" if _missing(v) else next(texts) for v in values]


def numeric_column(column: pd.Series) -> bool:
    """Whether every present value of the column is a number (such columns are right-aligned)."""
    present = [_plain(v) for v in column.tolist() if not _missing(_plain(v))]
    return bool(present) and all(_is_number(v) for v in present)


TOGETHER = (
    "mean",
    "ci_low",
    "ci_high",
    "effect",
    "base_mean",
    "variant_mean",
    "our_effect",
    "our_ci_low",
    "our_ci_high",
)
"""Columns of one quantity, a mean and its interval's bounds, formatted as one column (``1.0000`` beside
``0.9975``, not ``1.0``)."""


def _cells(frame: pd.DataFrame, joint: tuple[str, ...] = ()) -> list[list[str]]:
    """Every cell formatted, column by column (:func:`format_column`); the :data:`TOGETHER` columns, or the
    ``joint`` ones where given, as one."""
    names = [str(c) for c in frame.columns]
    chosen = joint or TOGETHER
    together = [i for i, name in enumerate(names) if name in chosen and names.count(name) == 1]
    columns: dict[int, list[str]] = {}
    if together:
        texts = format_column(pd.concat([frame.iloc[:, i] for i in together], ignore_index=True))
        for k, i in enumerate(together):
            columns[i] = texts[k * len(frame) : (k + 1) * len(frame)]
    for i in range(frame.shape[1]):
        columns.setdefault(i, format_column(frame.iloc[:, i]))
    ordered = [columns[i] for i in range(frame.shape[1])]
    return [list(row) for row in zip(*ordered, strict=True)] if ordered else [[] for _ in range(len(frame))]


def _md_table(frame: pd.DataFrame, joint: tuple[str, ...] = ()) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    header = [str(c) for c in frame.columns]
    rows = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(rows + [line(cells) for cells in _cells(frame, joint)])


LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "−": "$-$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "±": r"$\pm$",
    "²": "$^2$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
}


def latex_escape(text: str) -> str:
    r"""``ci_low`` -> ``ci\_low``: LaTeX's special characters escaped, a few Unicode symbols as math."""
    return "".join(LATEX_ESCAPES.get(c, c) for c in text)


def to_latex(frame: pd.DataFrame, source: str | None = None, joint: tuple[str, ...] = ()) -> str:
    r"""A booktabs table (``\toprule``/``\midrule``/``\bottomrule``; needs ``\usepackage{booktabs}``), numbers
    right-aligned and formatted as in the report, a minus as ``$-$``; written by hand, so pandas' Jinja2-based
    ``to_latex`` is not needed. ``source`` names the CSV in a leading comment."""
    numeric = [numeric_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    spec = "".join("r" if n else "l" for n in numeric) or "l"

    def cell(text: str, number: bool) -> str:
        if number and text.startswith("-"):
            return "$-$" + latex_escape(text[1:])
        return latex_escape(text)

    def line(cells: list[str]) -> str:
        return " & ".join(cells) + r" \\"

    lines = [f"% {source}, as in the report; needs \\usepackage{{booktabs}}"] if source else []
    lines += [f"\\begin{{tabular}}{{{spec}}}", r"\toprule", line([latex_escape(str(c)) for c in frame.columns])]
    lines.append(r"\midrule")
    lines += [line([cell(t, n) for t, n in zip(row, numeric, strict=True)]) for row in _cells(frame, joint)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _files_md(block: Table) -> str:
    return " · ".join(f"[{path}]({path})" for path in (block.csv, block.latex) if path)


def to_markdown(title: str, blocks: list[Block]) -> str:
    """The report as Markdown; images and CSV tables are linked by their relative paths."""
    parts = [f"# {title}"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            parts.append(f"{_md_table(block.frame, block.together)}\n\n{_files_md(block)}")
        elif isinstance(block, Image):
            parts.append(f"![{block.caption}]({block.path})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
"""A Markdown link, ``[text](href)``, as report texts write one (to a table's file)."""


def _inline(text: str) -> str:
    """A text's Markdown as HTML: `code` and [links](href)."""
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
    return LINK.sub(r'<a href="\2">\1</a>', escaped)


def _html_table(frame: pd.DataFrame, joint: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in _cells(frame, joint)
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; }
figure { margin: 1rem 0; }
img { max-width: 100%; }
figcaption, .csv { font-size: 0.85rem; color: #555; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def to_html(title: str, blocks: list[Block], root: Path) -> str:
    """The report as one HTML page; every image under ``root`` is embedded as a base64 data URI."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            links = " · ".join(
                f'<a href="{html.escape(path)}">{html.escape(path)}</a>' for path in (block.csv, block.latex) if path
            )
            parts.append(_html_table(block.frame, block.together) + f'<p class="csv">{links}</p>')
        elif isinstance(block, Image):
            data = base64.b64encode((root / block.path).read_bytes()).decode("ascii")
            caption = html.escape(block.caption)
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
