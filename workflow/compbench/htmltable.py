"""Result tables as self-contained, sortable HTML pages for the Snakemake report.

Snakemake's report shows an HTML result inline (an iframe) but offers a CSV only as
a download, so every result table also gets an HTML view (rule ``table_html``).
The page needs nothing from the network: its style and its sorter (click a column
header; numbers sort as numbers, empty cells last) are inline."""

from __future__ import annotations

import html
import math
import numbers

import numpy as np
import pandas as pd

# Provenance columns that hold whole JSON documents (every row the same config or
# versions): kept in the CSV, left out of the HTML view, which says so.
LONG_COLUMNS = ("config", "versions")

_STYLE = """
body{font-family:system-ui,sans-serif;font-size:13px;margin:8px}
p.note{color:#555;margin:4px 0 8px}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eee;cursor:pointer;position:sticky;top:0}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
tr:nth-child(even) td{background:#fafafa}
"""

# Sort on a click of a header; numbers (data-v) as numbers, empty cells last.
_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var desc = th.classList.contains("asc");
    table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
    th.classList.add(desc ? "desc" : "asc");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col];
      var ex = x.textContent === "", ey = y.textContent === "";
      if (ex || ey) { return ex === ey ? 0 : (ex ? 1 : -1); }
      var nx = x.dataset.v, ny = y.dataset.v, r;
      if (nx !== undefined && ny !== undefined) { r = parseFloat(nx) - parseFloat(ny); }
      else { r = x.textContent.localeCompare(y.textContent); }
      return desc ? -r : r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _cell(value) -> str:
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return "<td></td>"
    if isinstance(value, (bool, np.bool_)):
        return f"<td>{bool(value)}</td>"
    if isinstance(value, numbers.Integral):
        return f'<td class="n" data-v="{int(value)}">{int(value)}</td>'
    if isinstance(value, numbers.Real):
        return f'<td class="n" data-v="{float(value)!r}">{float(value):.6g}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def to_html(table: pd.DataFrame, title: str) -> str:
    """The page: a title, a note on what was left out, and the sortable table (no NaN: empty cells)."""
    dropped = [c for c in LONG_COLUMNS if c in table.columns]
    t = table.drop(columns=dropped)
    note = f"{len(t)} rows. Click a column header to sort."
    if dropped:
        note += f" Columns {', '.join(dropped)} (run provenance, the same JSON on every row) are in the CSV."
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in t.astype(object).itertuples(index=False, name=None))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f'<p class="note">{html.escape(note)}</p>\n'
        f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>\n'
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    )
