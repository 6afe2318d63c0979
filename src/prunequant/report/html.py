"""report.html: ONE self-contained file (plots embedded as base64 PNG, inline CSS, sortable tables by a few
lines of inline JS); it opens offline in any browser."""

from __future__ import annotations

import base64
import html

from prunequant.report.layout import Block, Summary
from prunequant.report.plots import Plot
from prunequant.report.tables import Table

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;
 color:#1d2433}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:8px 0 12px}h2{font-size:18px;margin:34px 0 10px;color:#24324a}
.ship{background:#eefaf0;border:2px solid #1f9d55;padding:10px 18px;border-radius:8px;margin:0 0 18px}
.ship.none{background:#fff4f2;border-color:#b42318}.ship h2{margin:4px 0 8px}.ship li{margin:4px 0}
.summary{background:#fff;border-left:5px solid #2c7be5;padding:12px 18px;border-radius:6px;
 box-shadow:0 1px 3px rgba(0,0,0,.08)}.summary li{margin:4px 0}
figure{background:#fff;margin:18px 0;padding:12px;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
figure img{max-width:100%;display:block;margin:0 auto}figcaption{font-size:13px;color:#5b6472;margin-top:6px}
.wrap{overflow-x:auto;background:#fff;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
table{border-collapse:collapse;width:100%;font-size:13px}
th{background:#24324a;color:#fff;padding:7px 9px;text-align:left;cursor:pointer;user-select:none;
 white-space:nowrap;
 position:sticky;top:0}
th.num,td.num{text-align:right}th:after{content:" \\2195";opacity:.45}
td{padding:5px 9px;border-bottom:1px solid #e7eaf0;white-space:nowrap}
tr:nth-child(even) td{background:#fafbfc}
tr.hl td{background:#fff3c4 !important;font-weight:600}.note{font-size:12px;color:#5b6472;margin:6px 2px}
td.err{white-space:normal;color:#b42318;max-width:340px}
details{margin-top:28px;background:#fff;padding:10px 14px;border-radius:6px}
summary{cursor:pointer;font-weight:600}pre{font-size:12px;overflow-x:auto}
"""

SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function(th, col){
  th.addEventListener("click", function(){
    var body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
    var asc = th.dataset.dir !== "asc"; th.dataset.dir = asc ? "asc" : "desc";
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      if (x === "" || y === "") return (x === "") - (y === "");  /* missing values last, either way */
      var nx = Number(x), ny = Number(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def table_html(table: Table) -> str:
    """A sortable HTML table (each cell carries its sort key in data-v)."""
    head = "".join(
        f'<th class="{"num" if i in table.numeric else ""}">{html.escape(c)}</th>'
        for i, c in enumerate(table.columns)
    )
    body = []
    for index, row in enumerate(table.rows):
        cells = []
        for i, (text, key) in enumerate(row):
            kind = "num" if i in table.numeric else ("err" if table.columns[i] == "error" else "")
            value = "" if key is None else html.escape(str(key), quote=True)
            cells.append(f'<td class="{kind}" data-v="{value}">{html.escape(text)}</td>')
        body.append(f'<tr class="{"hl" if index in table.highlight else ""}">{"".join(cells)}</tr>')
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (
        f'<h2>{html.escape(table.title)}</h2><div class="wrap"><table class="sortable"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def plot_html(plot: Plot) -> str:
    """The PNG inlined as a data: URI, with its caption."""
    data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(plot.key)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
    )


def render_html(summary: Summary, blocks: list[Block]) -> str:
    """The whole report as one HTML document."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary.lines)
    box = ""
    if summary.ship is not None:
        lines = "".join(f"<li>{html.escape(line)}</li>" for line in summary.ship.lines)
        kind = "ship" if summary.ship.shipped else "ship none"
        box = f'<section class="{kind}"><h2>{html.escape(summary.ship.title)}</h2><ul>{lines}</ul></section>'

    parts = [plot_html(block) if isinstance(block, Plot) else table_html(block) for block in blocks]
    if summary.recipe:
        parts.append(f"<details><summary>Recipe</summary><pre>{html.escape(summary.recipe)}</pre></details>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(summary.title)}</title>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
        f"<body><main><h1>{html.escape(summary.title)}</h1>{box}"
        f'<ul class="summary">{items}</ul>{"".join(parts)}'
        f"</main><script>{SORT_JS}</script></body></html>\n"
    )
