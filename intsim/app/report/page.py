"""The report as one self-contained HTML page.

:func:`build_report` turns runs (:class:`RunInput`) and sweeps
(:class:`SweepInput`) into the text of one HTML file: inline CSS, inline SVG
charts (:mod:`intsim.app.report.svg`) and a few lines of inline JavaScript
(sortable tables, the task selector of the audit, the settings filter). It
fetches nothing: no script, style sheet, font or image comes from elsewhere.
Every text taken from the files is escaped.

Sections and their ids (stable, for links and tests), in page order:
``sweep-K`` per sweep (K from 1; parts ``sweep-K-table``, ``sweep-K-axis``,
``sweep-K-pareto``), ``settings``, ``accuracy``, ``runs``, and per run ``run-N`` (N from
1, in the order given; a sweep's runs follow the runs named alone) with its
parts ``run-N-matrix``, ``run-N-audit`` and ``run-N-cost``.
"""
from __future__ import annotations

import math
from html import escape

from intsim import __version__
from intsim.app.costreport import COST_PASS_SHORT, fmt_energy
from intsim.app.report import svg
from intsim.app.sweepreport import axes_of
from intsim.app.report.model import (ReportError, RunInput, SweepInput, accuracy_matrix,
                                     audit_views, cost_view, heat_grid, matrix_forgetting,
                                     stored_matrix,
                                     setting_text, settings_table, summary_of,
                                     sweep_view, task_accuracies)

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d0d7de; --soft: #f6f8fa;
        --accent: #0b5cad; --differs: #fff4cc; --flag: #fde2dd; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       Arial, sans-serif; color: var(--ink); background: #fff; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; border-bottom: 1px solid var(--line); }
h1 { font-size: 22px; margin: 0 0 4px; word-break: break-word; }
h2 { font-size: 19px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; word-break: break-word; }
h4 { font-size: 14px; margin: 16px 0 6px; }
a { color: var(--accent); }
.meta, .note { color: var(--muted); }
.note { font-size: 13px; }
nav ul { list-style: none; padding: 0; margin: 8px 0 14px; display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav li.runs-nav { flex-basis: 100%; }
nav .run-links a { margin-right: 10px; }
section.run { border-top: 1px solid var(--line); margin-top: 24px; }
.scroll { overflow-x: auto; max-width: 100%; margin: 6px 0 10px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th:hover { background: #eaeef2; }
table.sortable th::after { content: " \\2195"; color: #9aa4ae; font-weight: 400; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; color: var(--ink); }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; color: var(--ink); }
table.settings td.value { max-width: 22em; word-break: break-word; }
table.settings th.run { max-width: 14em; white-space: normal; word-break: break-word; }
tr.differs td { background: var(--differs); }
.badge { display: inline-block; font-size: 11px; padding: 0 5px; margin-left: 6px; border-radius: 8px;
         background: #b35900; color: #fff; vertical-align: 1px; }
table.only-differs tbody tr:not(.differs) { display: none; }
tr.flagged td { background: var(--flag); }
tfoot td { font-weight: 600; background: var(--soft); }
.charts { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
figure { margin: 8px 0; max-width: 100%; }
figcaption { font-size: 13px; color: var(--muted); margin-bottom: 2px; }
svg.chart { max-width: 100%; height: auto; display: block; font-family: inherit; }
svg.chart text { fill: var(--ink); }
svg.chart .grid { stroke: #e6e9ed; stroke-width: 1; }
svg.chart .tick { stroke: #8c959f; }
svg.chart .frame { fill: none; stroke: #8c959f; }
svg.chart .cell { stroke: #ffffff; }
ul.legend { list-style: none; padding: 0; margin: 4px 0 8px; display: flex; flex-wrap: wrap; gap: 2px 16px;
            font-size: 13px; max-width: 1000px; }
ul.legend li { display: flex; align-items: center; gap: 4px; }
.controls { margin: 6px 0; }
select { font: inherit; padding: 1px 4px; }
.task-view[hidden] { display: none; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; font-size: 13px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
"""

JS = """
(function () {
  "use strict";
  function key(td, type) {
    var v = td.getAttribute("data-value");
    if (v === null) { v = td.textContent; }
    if (type === "num") { var x = parseFloat(v); return isNaN(x) ? null : x; }
    return v.toLowerCase();
  }
  function sortBy(table, th) {
    var idx = th.cellIndex, type = th.getAttribute("data-type") || "text";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[idx], type), y = key(b.cells[idx], type);
      if (x === null || y === null) {        /* empty cells last, either way */
        if (x !== y) { return x === null ? 1 : -1; }
      } else if (x !== y) {
        return (type === "num" ? (x < y ? -1 : 1) : x.localeCompare(y)) * dir;
      }
      return a.getAttribute("data-order") - b.getAttribute("data-order");
    });
    rows.forEach(function (r) { body.appendChild(r); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
      });
    });
  });
  document.querySelectorAll("select.task-select").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var group = document.getElementById(sel.getAttribute("data-group"));
      group.querySelectorAll(".task-view").forEach(function (v) {
        v.hidden = v.getAttribute("data-task") !== sel.value;
      });
    });
  });
  var only = document.getElementById("settings-only-differs");
  if (only) {
    only.addEventListener("change", function () {
      document.getElementById("settings-table").classList.toggle("only-differs", only.checked);
    });
  }
})();
"""


def _e(s) -> str:
    return escape(str(s))


def _f(v, digits: int = 2) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _td(text, value=None, cls: str = "num") -> str:
    """A table cell; ``value`` (a number) is what the sort uses (data-value)."""
    attr = ""
    if value is not None and isinstance(value, (int, float)) and math.isfinite(value):
        attr = f' data-value="{value!r}"'
    elif value is not None:
        attr = f' data-value="{_e(value)}"'
    return f'<td class="{cls}"{attr}>{text}</td>'


def _th(text, kind: str = "text", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else (' class="num"' if kind == "num" else "")
    return f'<th data-type="{kind}"{c}>{_e(text)}</th>'


def _table(heads: list[str], rows: list[str], *, id: str, cls: str = "sortable",
           foot: list[str] | None = None) -> str:
    """A table whose ``heads`` are <th> strings and ``rows`` <tr> inner HTML strings;
    each row gets data-order (its place, the sort's tie-break)."""
    body = "".join(f'<tr data-order="{i}"{r[0]}>{r[1]}</tr>' if isinstance(r, tuple)
                   else f'<tr data-order="{i}">{r}</tr>' for i, r in enumerate(rows))
    tfoot = f"<tfoot>{''.join(f'<tr>{r}</tr>' for r in foot)}</tfoot>" if foot else ""
    return (f'<div class="scroll"><table id="{id}" class="{cls}"><thead><tr>{"".join(heads)}'
            f"</tr></thead><tbody>{body}</tbody>{tfoot}</table></div>")


def _pm_value(cell: str):
    """The mean of an ``m +- s`` cell, for sorting (the text when not a number)."""
    try:
        return float(cell.split("+-")[0].replace(",", ""))
    except ValueError:
        return cell


# ---------------------------------------------------------------- sections

#: the page's top lists the runs by name up to this many
NAV_RUNS = 12
#: with more runs than this, the settings are two tables: the ones that differ (a row
#: per run) and the ones every run shares
WIDE = 6


def _settings_section(runs: list[RunInput]) -> str:
    out = ['<section id="settings"><h2>Settings</h2>']
    if not runs:
        return out[0] + '<p class="note">no run</p></section>'
    keys, values, differs = settings_table([r.results for r in runs])
    if len(runs) == 1:
        out.append('<p class="note">results.json <code>config</code> of the run and the '
                   'threads it used.</p>')
        heads = [_th("setting"), _th("value")]
    elif len(runs) <= WIDE:
        out.append(f'<p class="note">{len(differs)} of {len(keys)} settings differ between '
                   f'the runs (marked <span class="badge">differs</span>, highlighted); '
                   '"-": the run has no such setting.</p>'
                   '<p class="controls"><label><input type="checkbox" '
                   'id="settings-only-differs"> only the settings that differ</label></p>')
        heads = [_th("setting")] + [
            f'<th data-type="text" class="run"><a href="#run-{i + 1}">{_e(r.label)}</a></th>'
            for i, r in enumerate(runs)]
    else:
        return "".join(out) + _settings_wide(runs, keys, values, differs) + "</section>"
    rows = []
    for k, vals in zip(keys, values):
        mark = ' <span class="badge">differs</span>' if k in differs else ""
        cells = f'<td data-value="{_e(k)}"><code>{_e(k)}</code>{mark}</td>' + "".join(
            f'<td class="value">{_e(setting_text(v))}</td>' for v in vals)
        attr = f' data-key="{_e(k)}"' + (' class="differs" data-differs="1"'
                                          if k in differs else "")
        rows.append((attr, cells))
    out.append(_table(heads, rows, id="settings-table", cls="settings"))
    out.append("</section>")
    return "".join(out)


def _settings_wide(runs, keys, values, differs) -> str:
    """Many runs: a row per run with the settings that differ (sortable), then the
    settings every run shares."""
    dkeys = [k for k in keys if k in differs]
    out = [f'<p class="note">{len(dkeys)} of {len(keys)} settings differ between the '
           f'{len(runs)} runs (marked <span class="badge">differs</span>): one row per run '
           'below, then the settings every run shares. "-": the run has no such setting. '
           'Click a column header to sort.</p>']
    col = {k: vals for k, vals in zip(keys, values)}
    heads = [_th("run")] + [
        f'<th data-type="text" class="differs" data-key="{_e(k)}" data-differs="1">'
        f'{_e(k)} <span class="badge">differs</span></th>' for k in dkeys]
    rows = []
    for i, r in enumerate(runs):
        cells = f'<td data-value="{_e(r.label)}"><a href="#run-{i + 1}">{_e(r.label)}</a></td>'
        for k in dkeys:
            v = col[k][i]
            num = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
            cells += ('<td class="value"'
                      + (f' data-value="{num!r}"' if num is not None else "")
                      + f">{_e(setting_text(v))}</td>")
        rows.append(cells)
    out.append(_table(heads, rows, id="settings-differ-table", cls="sortable settings"))
    out.append("<h4>The same in every run</h4>")
    rows = [(f' data-key="{_e(k)}"', f'<td><code>{_e(k)}</code></td>'
             f'<td class="value">{_e(setting_text(vals[0]))}</td>')
            for k, vals in zip(keys, values) if k not in differs]
    out.append(_table([_th("setting"), _th("value")], rows, id="settings-table",
                      cls="settings"))
    return "".join(out)


def _accuracy_section(runs: list[RunInput]) -> str:
    out = ['<section id="accuracy"><h2>Accuracy per task</h2>']
    if not runs:
        return out[0] + '<p class="note">no run</p></section>'
    accs = [task_accuracies(r.results) for r in runs]
    n_tasks = max((len(a["cnn"]) for a in accs), default=0)
    out.append('<p class="note">Top-1 accuracy (%) on the test data of every class seen, '
               'after each task: CNN (the network\'s classifier) and NME (nearest mean of '
               'exemplars, for the methods that have it).</p>')
    charts = []
    ticks = list(range(1, n_tasks + 1)) if n_tasks <= 20 else None
    for which, title in (("cnn", "CNN accuracy"), ("nme", "NME accuracy")):
        series = []
        for i, (r, a) in enumerate(zip(runs, accs)):
            ys = a[which]
            if ys is None:
                continue
            colour, dash = svg.style(i)
            series.append({"label": r.label, "xs": list(range(1, len(ys) + 1)), "ys": ys,
                           "colour": colour, "dash": dash})
        if series and any(y is not None for s in series for y in s["ys"]):
            charts.append(f'<figure id="accuracy-{which}-chart"><figcaption>{title} (%) after '
                          f'each task</figcaption>' + svg.line_chart(
                              series, "task", "accuracy %", label=f"{title} after each task",
                              y_range=(0, 100), x_ticks=ticks, width=540, height=300)
                          + "</figure>")
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    out.append(svg.legend_html([(r.label, *svg.style(i)) for i, r in enumerate(runs)],
                               [f"#run-{i + 1}" for i in range(len(runs))]))
    heads = ([_th("run"), _th("classifier")]
             + [_th(f"task {t + 1}", "num") for t in range(n_tasks)]
             + [_th("avg inc", "num"), _th("last", "num"), _th("forgetting", "num")])
    rows = []
    for i, (r, a) in enumerate(zip(runs, accs)):
        for which in ("cnn", "nme"):
            ys = a[which]
            if ys is None:
                continue
            s = summary_of(r.results, which)
            cells = (f'<td data-value="{_e(r.label)}"><a href="#run-{i + 1}">{_e(r.label)}</a>'
                     f"</td><td>{which.upper()}</td>"
                     + "".join(_td(_f(y), y) for y in ys)
                     + "".join(_td("", None) for _ in range(n_tasks - len(ys)))
                     + _td(_f(s["avg"]), s["avg"]) + _td(_f(s["last"]), s["last"])
                     + _td(_f(s["forgetting"]), s["forgetting"]))
            rows.append(cells)
    out.append(_table(heads, rows, id="accuracy-table"))
    out.append('<p class="note">avg inc: the mean of the accuracies after each task; '
               'forgetting: results.json <code>summary</code>, after the last task (the mean '
               'over the classes seen of their best accuracy minus their last).</p>')
    out.append("</section>")
    return "".join(out)


def _matrix_colour(v: float | None) -> str:
    if v is None:
        return ""
    t = min(max(v / 100.0, 0.0), 1.0)
    lo, hi = (247, 251, 255), (33, 113, 181)
    rgb = [round(a + (b - a) * t) for a, b in zip(lo, hi)]
    ink = "#ffffff" if t > 0.6 else "#1f2328"
    return f' style="background:#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x};color:{ink}"'


def _matrix_part(n: int, run: RunInput) -> str:
    out = [f'<div id="run-{n}-matrix" class="part matrix"><h4>Accuracy matrix (CNN)</h4>']
    mat = accuracy_matrix(run.results, "cnn")
    if mat is None:
        out.append('<p class="note">no per-class accuracies (per_class_cnn and the tasks\' '
                   'classes) in results.json</p></div>')
        return "".join(out)
    tasks = run.results.get("tasks") or []
    stored = stored_matrix(run.results, "cnn") is not None
    heads = [f'<th>after task \\ {"test data of" if stored else "classes of"}</th>']
    domains = _domain_groups(run.results)
    for j, t in enumerate(tasks):
        ids = t.get("class_ids") if isinstance(t.get("class_ids"), list) else t.get("classes")
        tip = f"task {j + 1}: classes " + ", ".join(str(c) for c in (ids or []))
        if domains is not None and j < len(domains):
            tip = f"task {j + 1}: {domains[j]}"
        heads.append(f'<th class="num" title="{_e(tip)}">task {j + 1}</th>')
    body = []
    for i, row in enumerate(mat):
        cells = [f"<th>task {i + 1}</th>"]
        cells += [f'<td class="num"{_matrix_colour(v)}>{_f(v, 1)}</td>' for v in row]
        cells += ['<td class="num"></td>'] * (len(mat) - len(row))
        body.append(f"<tr>{''.join(cells)}</tr>")
    forg = matrix_forgetting(mat)
    foot = ""
    if forg:
        foot = ("<tfoot><tr><th>forgetting</th>"
                + "".join(f'<td class="num">{_f(v, 1)}</td>' for v in forg)
                + '<td class="num"></td></tr></tfoot>')
    out.append(f'<div class="scroll"><table id="run-{n}-matrix-table" class="matrix">'
               f'<thead><tr>{"".join(heads)}</tr></thead><tbody>{"".join(body)}</tbody>'
               f"{foot}</table></div>")
    s = summary_of(run.results, "cnn")
    source = ("the accuracy (%) on task j's test samples after task i (results.json "
              "summary.cnn.by_task.matrix; scenario " + _e(_scenario(run.results)) + ")"
              if stored else
              "the mean accuracy (%) on the classes task j added, after task i (from "
              "per_class_cnn, each class counted once)")
    out.append(f'<p class="note">Row i, column j: {source}. '
               'Forgetting: for each task but the last, its best accuracy before the last task '
               'minus its accuracy after it (percentage points)'
               + (f"; the run's forgetting over classes (results.json summary): "
                  f"{_f(s['forgetting'])}" if s["forgetting"] is not None else "")
               + ".</p></div>")
    return "".join(out)


def _scenario(res: dict) -> str:
    """The run's scenario (config.scenario; "class" for records before it existed)."""
    c = res.get("config") if isinstance(res.get("config"), dict) else {}
    return str(c.get("scenario") or "class")


def _domain_groups(res: dict) -> list[str] | None:
    """Per task of a domain run by subject, "subjects 3, 7"; None otherwise."""
    run = res.get("run") if isinstance(res.get("run"), dict) else {}
    dom = run.get("domains") if isinstance(run.get("domains"), dict) else {}
    groups = dom.get("subjects")
    if not isinstance(groups, list):
        return None
    return ["subjects " + ", ".join(str(x) for x in g) if isinstance(g, list) else str(g)
            for g in groups]


def _audit_table(n: int, key: str, rows: list[dict]) -> str:
    flt = any("flushed" in r for r in rows)
    acc = any("acc_adds" in r for r in rows)
    heads = [_th("layer"), _th("pass"), _th("tiles" if not flt else "values", "num"),
             _th("saturated", "num"), _th("sat %", "num"),
             _th("max|psum|" if not flt else "max|x/s|", "num"), _th("/range", "num"),
             _th("levels", "num")]
    if flt:
        heads += [_th("flushed", "num"), _th("flush %", "num")]
    if acc:
        heads += [_th("acc adds", "num"), _th("swamped %", "num"), _th("acc sat %", "num")]
    heads.append(_th("flagged"))
    body = []
    for r in rows:
        cells = (_td(_e(r["layer"]), r["layer"], "") + _td(_e(r["pass"]), None, "")
                 + _td(f"{r['tiles']:,}", r["tiles"]) + _td(f"{r['saturated']:,}", r["saturated"])
                 + _td(f"{r['sat_pct']:.3f}", r["sat_pct"])
                 + _td(svg.fmt_num(r["max_abs"]), r["max_abs"])
                 + _td(_f(r["max_over_range"], 3), r["max_over_range"])
                 + _td(_f(r["levels_used"], 3), r["levels_used"]))
        if flt:
            cells += (_td(f"{r.get('flushed', 0):,}", r.get("flushed", 0))
                      + _td(_f(r.get("flushed_pct"), 3), r.get("flushed_pct")))
        if acc:
            cells += (_td(f"{r.get('acc_adds', 0):,}", r.get("acc_adds", 0))
                      + _td(_f(r.get("swamped_pct"), 3), r.get("swamped_pct"))
                      + _td(_f(r.get("acc_sat_pct"), 3), r.get("acc_sat_pct")))
        cells += _td("&lt;&lt;" if r["flagged"] else "", "1" if r["flagged"] else "0", "")
        body.append((' class="flagged"' if r["flagged"] else "", cells))
    return _table(heads, body, id=f"run-{n}-audit-table-{key}", cls="sortable audit-table")


def _audit_part(n: int, run: RunInput) -> str:
    group = f"run-{n}-audit"
    out = [f'<div id="{group}" class="part audit"><h4>Overflow audit</h4>']
    views = audit_views(run.results)
    if not views:
        out.append('<p class="note">no audit: the run has no quantized layers '
                   '(float arithmetic)</p></div>')
        return "".join(out)
    vmax = max((r["sat_pct"] for _, _, rows in views for r in rows if r["tiles"]), default=0.0)
    vmax = vmax if vmax > 0 else 1.0
    opts = "".join(f'<option value="{_e(k)}">{_e(title)}</option>' for k, title, _ in views)
    out.append(f'<p class="controls"><label>show <select class="task-select" '
               f'data-group="{group}" id="{group}-select">{opts}</select></label> '
               f'<span class="note">saturated accumulator results (% of the pass\'s tiles) '
               f'per layer and pass; one colour scale for every task of the run '
               f'(0 .. {svg.fmt_num(vmax)} %); "-": the pass has no tiles. Click a column '
               f'header to sort the table.</span></p>')
    for k, title, rows in views:
        layers, passes, values = heat_grid(rows)
        hidden = "" if k == "all" else " hidden"
        out.append(f'<div class="task-view" data-task="{_e(k)}"{hidden}>')
        out.append(f'<figure><figcaption>saturated %, {_e(title)}</figcaption>'
                   + svg.heatmap(layers, passes, values, vmax,
                                 label=f"{run.label}: saturated % by layer and pass, {title}")
                   + "</figure>")
        out.append(_audit_table(n, k, rows))
        out.append("</div>")
    cfg = run.results.get("config") if isinstance(run.results.get("config"), dict) else {}
    out.append(f'<p class="note">Rows marked &lt;&lt; (highlighted) have more than '
               f'{_e(cfg.get("audit_threshold", 1.0))} % of their results saturated '
               '(the run\'s audit_threshold). Columns: docs/run-folder.md, "The audit '
               'table".</p></div>')
    return "".join(out)


def _cost_part(n: int, run: RunInput, table) -> str:
    out = [f'<div id="run-{n}-cost" class="part cost"><h4>Cost</h4>']
    view = cost_view(run.results, table)
    if view is None:
        out.append('<p class="note">no cost record (results.json <code>cost</code>)</p></div>')
        return "".join(out)
    macs = view["record"]["total"].get("macs", 0)
    out.append('<dl class="facts">'
               f'<dt>total energy</dt><dd id="run-{n}-cost-total">'
               f'{_e(fmt_energy(view["energy_uj"]))} uJ over {macs:,} MACs'
               + (f', {_e(fmt_energy(view["pj_per_mac"]))} pJ per MAC (every operation '
                  'counted)' if view["pj_per_mac"] is not None else "")
               + f'</dd><dt>energy table</dt><dd>{_e(view["table"])}'
               + (f'; {_e(view["source"])}' if view["source"] else "") + "</dd></dl>")
    charts = ['<figure><figcaption>energy by pass (uJ)</figcaption>'
              + svg.bar_chart([(COST_PASS_SHORT.get(p, p), e * 1e-6) for p, e in view["by_pass"]],
                              label=f"{run.label}: energy by pass", unit="uJ", width=460,
                              fmt=fmt_energy) + "</figure>"]
    if len(view["by_layer"]) <= 40:
        charts.append('<figure><figcaption>energy by layer, every pass (uJ)</figcaption>'
                      + svg.bar_chart([(k, e * 1e-6) for k, e in view["by_layer"]],
                                      label=f"{run.label}: energy by layer", unit="uJ",
                                      width=520, fmt=fmt_energy) + "</figure>")
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    heads = [_th("layer"), _th("pass"), _th("MACs", "num"), _th("energy uJ", "num"),
             _th("share %", "num"), _th("top op classes")]

    def cells(r):
        return (_td(_e(r["layer"]), r["layer"], "")
                + _td(_e(COST_PASS_SHORT.get(r["pass"], r["pass"])), None, "")
                + _td(f"{r['macs']:,}", r["macs"])
                + _td(_e(fmt_energy(r["energy_pj"] * 1e-6)), r["energy_pj"])
                + _td(f"{r['share']:.1f}", r["share"]) + _td(_e(r["top"]), None, ""))
    n_totals = len(view["record"]["by_pass"]) + 1
    rows = view["rows"]
    out.append(_table(heads, [cells(r) for r in rows[:-n_totals]], id=f"run-{n}-cost-table",
                      foot=[cells(r) for r in rows[-n_totals:]]))
    out.append('<p class="note">Per layer and pass (opt: the optimizer\'s update); the '
               'totals per pass and for all passes below. Top op classes: the three that '
               'cost the row most, with their % of the row (docs/cost.md).</p></div>')
    return "".join(out)


def _run_section(n: int, run: RunInput, sweeps: list[SweepInput], table) -> str:
    """The section of one run; ReportError naming the run when its results.json has
    an unexpected shape."""
    where = run.path or run.name
    try:
        return _run_body(n, run, sweeps, table)
    except ReportError as e:
        raise ReportError(f"{where}: {e}") from None
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
        raise ReportError(f"{where}: results.json has an unexpected shape ({e!r})") from None


def _run_body(n: int, run: RunInput, sweeps: list[SweepInput], table) -> str:
    res = run.results
    info = res.get("run") if isinstance(res.get("run"), dict) else {}
    tasks = res.get("tasks") or []
    facts = [("folder", run.path or run.name)]
    if run.sweep is not None:
        facts.append(("sweep", f'<a href="#sweep-{run.sweep + 1}">'
                               f'{_e(sweeps[run.sweep].name)}</a>'))
    if info.get("arith") is not None:
        facts.append(("datapath", info["arith"]))
    if info.get("dataset_name") or info.get("dataset"):
        facts.append(("dataset", info.get("dataset_name") or info.get("dataset")))
    n_all = info.get("num_tasks")
    done = f"{len(tasks)} task(s)" + (f" of {n_all}" if n_all else "")
    done += "" if res.get("complete", True) else " (unfinished run)"
    facts.append(("tasks", done))
    if "seed" in res:
        facts.append(("seed", res["seed"]))
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{v if k == 'sweep' else _e(v)}</dd>" for k, v in facts)
    return (f'<section id="run-{n}" class="run"><h3>{_e(run.label)}</h3>'
            f'<dl class="facts">{dl}</dl>'
            + _matrix_part(n, run) + _audit_part(n, run) + _cost_part(n, run, table)
            + '<p class="note"><a href="#top">top</a></p></section>')


def _sweep_section(k: int, sweep: SweepInput, first_run: int, table) -> str:
    sid = f"sweep-{k}"
    view = sweep_view(sweep, table)
    out = [f'<section id="{sid}" class="sweep"><h2>Sweep: {_e(sweep.name)}</h2>',
           f'<p class="note">{_e(sweep.path)}: {len(sweep.runs)} finished run(s)'
           + (f", {sweep.missing} not finished (intsim sweep status)" if sweep.missing else "")
           + ". One row per grid point: the runs that differ only in their seed, each figure "
           "their mean +- sample std over the seeds.</p>"]
    header, rows = view["header"], view["rows"]
    n_axes = header.index("seeds") if "seeds" in header else 0
    heads = [_th(h, "text" if i < n_axes else "num") for i, h in enumerate(header)]
    heads.append(_th("runs"))
    body = []
    for i, row in enumerate(rows):
        cells = "".join(_td(_e(c), c, "") if j < n_axes else _td(_e(c), _pm_value(c))
                        for j, c in enumerate(row))
        links = []
        for m in view["members"][i]:
            run = sweep.runs[m]
            seed = run.results.get("seed", m + 1)
            links.append(f'<a href="#run-{first_run + m}" title="{_e(run.name)}">'
                         f'seed {_e(seed)}</a>')
        cells += f'<td>{", ".join(links)}</td>'
        body.append((f' id="{sid}-point-{i + 1}"', cells))
    out.append(f'<div id="{sid}-table" class="part">'
               + _table(heads, body, id=f"{sid}-table-rows") + "</div>")
    # against the swept axis
    out.append(f'<div id="{sid}-axis" class="part"><h4>Against the swept axis</h4>')
    x, _ = view["series"]["cnn_avg"]
    if x is None:
        out.append('<p class="note">no numeric grid axis with several values to plot '
                   'against</p>')
    else:
        charts, legend = [], []
        for fld, title, y_label in (("cnn_avg", "CNN average incremental accuracy", "CNN avg inc %"),
                                    ("sat_pct", "saturated accumulator results", "saturated %")):
            ax, series = view["series"][fld]
            lines = []
            for i, (name, (xs, ms, ss)) in enumerate(series.items()):
                colour, dash = svg.style(i)
                lines.append({"label": name, "xs": xs, "ys": ms, "err": ss,
                              "colour": colour, "dash": dash})
                if fld == "cnn_avg":
                    legend.append((name, colour, dash))
            if not any(m is not None for s in lines for m in s["ys"]):
                continue
            xs_all = sorted({v for s in lines for v in s["xs"]})
            ticks = xs_all if len(xs_all) <= 12 else None
            tick_text = (["none" if (v == 16 and _has_none(sweep, ax)) else svg.fmt_num(v)
                          for v in xs_all] if ticks else None)
            y_range = (0, 100) if fld == "cnn_avg" else None
            charts.append(f'<figure id="{sid}-{fld}-chart"><figcaption>{title} against {_e(ax)}'
                          f' (mean +- std over seeds)</figcaption>'
                          + svg.line_chart(lines, ax, y_label, label=f"{title} against {ax}",
                                           x_ticks=ticks, x_tick_text=tick_text,
                                           y_range=y_range, width=520, height=300)
                          + "</figure>")
        out.append(f'<div class="charts">{"".join(charts)}</div>' + svg.legend_html(legend))
        out.append('<p class="note">One line per combination of the other axes'
                   + ('; <code>none</code> (no accumulator limit) is drawn at 16'
                      if _has_none(sweep, x) else "") + ".</p>")
    out.append("</div>")
    # accuracy against energy
    out.append(f'<div id="{sid}-pareto" class="part"><h4>Accuracy against energy</h4>')
    points, front = view["points"], view["front"]
    if not points:
        out.append('<p class="note">no run of the sweep has a cost record</p>')
    else:
        where = {lab: i for i, lab in enumerate(view["point_labels"]) if lab is not None}
        pts = [{"x": p["energy_uj"], "y": p["acc"], "xerr": p["energy_std"],
                "yerr": p["acc_std"], "label": p["label"], "n": str(i + 1)}
               for i, p in enumerate(points)]
        out.append('<figure><figcaption>CNN average incremental accuracy (%) against energy '
                   '(uJ), the Pareto front filled and joined</figcaption>'
                   + svg.scatter_front(pts, front, "energy uJ", "CNN avg inc %",
                                       label=f"{sweep.name}: accuracy against energy")
                   + "</figure>")
        heads = [_th("#", "num"), _th("grid point"), _th("energy uJ", "num"),
                 _th("CNN avg inc %", "num"), _th("seeds", "num"), _th("Pareto front")]
        on = set(front)
        body = []
        for i, p in enumerate(points):
            lab = _e(p["label"])
            if p["label"] in where:
                lab = f'<a href="#{sid}-point-{where[p["label"]] + 1}">{lab}</a>'
            e_txt = fmt_energy(p["energy_uj"]) + (f" +- {fmt_energy(p['energy_std'])}"
                                                  if p["seeds"] > 1 else "")
            a_txt = _f(p["acc"]) + (f" +- {_f(p['acc_std'])}" if p["seeds"] > 1 else "")
            body.append(_td(str(i + 1), i + 1) + _td(lab, p["label"], "")
                        + _td(_e(e_txt), p["energy_uj"]) + _td(a_txt, p["acc"])
                        + _td(str(p["seeds"]), p["seeds"])
                        + _td("yes" if i in on else "", "1" if i in on else "0", ""))
        out.append(_table(heads, body, id=f"{sid}-pareto-table"))
        out.append('<p class="note">On the front: no other grid point has lower or equal '
                   'energy with higher or equal accuracy.</p>')
    out.append("</div></section>")
    return "".join(out)


def _has_none(sweep: SweepInput, axis: str) -> bool:
    """True when a run of the sweep has ``none`` on ``axis`` (drawn at 16)."""
    return any(axes_of(r.grid or "").get(axis) == "none" for r in sweep.runs)


# ---------------------------------------------------------------- the page

def build_report(runs: list[RunInput], sweeps: list[SweepInput] = (), *,
                 title: str | None = None, table=None) -> str:
    """The HTML text of the report of ``runs`` (named alone) and ``sweeps`` (each with
    its finished runs, which follow in the run sections); ``table``: an EnergyTable
    that prices every cost record again (None: as stored)."""
    sweeps = list(sweeps)
    every = list(runs)
    first = []
    for k, s in enumerate(sweeps):
        first.append(len(every) + 1)
        for r in s.runs:
            r.sweep = k
            every.append(r)
    names = [r.label for r in runs] + [s.name for s in sweeps]
    title = title or ("intsim report: " + ", ".join(names[:4])
                      + (f" and {len(names) - 4} more" if len(names) > 4 else ""))
    nav = [f'<li><a href="#sweep-{k + 1}">Sweep: {_e(s.name)}</a></li>'
           for k, s in enumerate(sweeps)]
    nav += ['<li><a href="#settings">Settings</a></li>', '<li><a href="#accuracy">Accuracy</a></li>']
    if len(every) <= NAV_RUNS:
        nav.append('<li class="runs-nav"><a href="#runs">Runs</a>: <span class="run-links">'
                   + " ".join(f'<a href="#run-{i + 1}">{_e(r.label)}</a>'
                              for i, r in enumerate(every)) + "</span></li>")
    else:                   # the accuracy table and the sweep tables link to each run
        nav.append(f'<li><a href="#runs">Runs ({len(every)})</a></li>')
    parts = [_sweep_section(k + 1, s, first[k], table) for k, s in enumerate(sweeps)]
    parts += [_settings_section(every), _accuracy_section(every)]
    parts.append('<section id="runs"><h2>Runs</h2><p class="note">Per run: the accuracy '
                 'matrix and forgetting, the overflow audit and the cost.</p>'
                 + "".join(_run_section(i + 1, r, sweeps, table) for i, r in enumerate(every))
                 + "</section>")
    what = f"{len(every)} run(s)" + (f", {len(sweeps)} sweep folder(s)" if sweeps else "")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f'<header id="top"><h1>{_e(title)}</h1><p class="meta">{what}; written by intsim '
            f'{_e(__version__)}</p><nav id="toc"><ul>{"".join(nav)}</ul></nav></header>'
            f'<main>{"".join(parts)}</main><script>{JS}</script></body></html>\n')
