"""`intsim report`: the HTML page of one run, of two runs, of a tiny sweep, and of
hand-made results lacking parts; what the page holds (stable section ids, sortable
tables with data attributes, the settings that differ marked, escaped text, nothing
fetched from the network), its numbers (the accuracy matrix and forgetting), and
bad input (one line, exit code 2). No browser: tests/test_report_browser.py opens
the page in one."""
import builtins
import json
import re
import sys
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from intsim.app import costreport
from intsim.app import runfolder as runio
from intsim.app.report import RunInput, build_report
from intsim.app.report.model import accuracy_matrix, matrix_forgetting, settings_table
from intsim.app.report.svg import nice_ticks, tick_texts
from intsim.cli.main import main

from test_cli_train import FAST, train
from test_sweep import tiny_spec


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of <script>/<style>."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.script, self.style, self._in = [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.script.append(data)
        elif self._in == "style":
            self.style.append(data)

    def ids(self):
        return {a["id"] for _, a in self.tags if "id" in a}

    def find(self, tag=None, **attrs):
        return [a for t, a in self.tags if (tag is None or t == tag)
                and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def report(args):
    return CliRunner().invoke(main, ["report", *args])


def assert_self_contained(text):
    """Nothing the page uses comes from elsewhere: no script or style sheet by URL, no
    url() or @import, no http(s) address anywhere, every link an anchor in the page."""
    page = Page(text)
    assert not re.search(r"https?://", text)
    assert not re.search(r"<script[^>]*\ssrc\s*=", text, re.I)
    assert not re.search(r"<link[^>]*\shref\s*=", text, re.I)
    assert not re.search(r"url\s*\(", text, re.I) and "@import" not in text
    for tag, a in page.tags:
        assert "src" not in a, (tag, a)
        if "href" in a:
            assert a["href"].startswith("#") and a["href"][1:] in page.ids(), a
    assert page.script and page.style
    return page


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny real runs: HDQT iCaRL (with NME, audit, cost) and FP iCaRL (no audit)."""
    d = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in (("hdqt", []), ("fp", ["--arith", "fp"])):
        r = train(["--out", str(d / name), "--threads", "1", *FAST, *extra])
        assert r.exit_code == 0, r.output + r.stderr
        out[name] = d / name
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A tiny finished sweep: accumulator bits 6 and 8, two seeds each."""
    d = tmp_path_factory.mktemp("sweep")
    spec = tiny_spec(d, grid="acc_bits = [6, 8]\nseed = [1, 2]\n")
    r = CliRunner().invoke(main, ["sweep", spec, "--out", str(d / "out")])
    assert r.exit_code == 0, r.output + r.stderr
    return d / "out"


def test_report_of_one_run(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = report([str(runs["hdqt"])])
    assert r.exit_code == 0, r.output + r.stderr
    out = tmp_path / "report.html"               # the default: report.html here
    assert r.stdout.strip() == str(out) and out.stat().st_size > 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    page = assert_self_contained(text)
    assert {"settings", "settings-table", "accuracy", "accuracy-cnn-chart",
            "accuracy-nme-chart", "accuracy-table", "runs", "run-1", "run-1-matrix",
            "run-1-matrix-table", "run-1-audit", "run-1-audit-table-all",
            "run-1-audit-table-0", "run-1-cost", "run-1-cost-table"} <= page.ids()
    assert not any(i.startswith("sweep-") for i in page.ids())
    assert text.count("<svg") >= 6                # 2 accuracy charts, 4 heatmaps, 2 bars
    # the sortable audit table: a data-type per header, a data-value per number
    table = text.split('id="run-1-audit-table-all"')[1].split("</table>")[0]
    assert 'class="sortable audit-table"' in text
    heads = re.findall(r"<th ([^>]*)>", table.split("</thead>")[0])
    assert heads and all("data-type=" in h for h in heads)
    assert re.search(r'<tr data-order="0"', table) and 'data-value="' in table
    # the task selector: all tasks shown, each task hidden until chosen
    sel = page.find("select", id="run-1-audit-select")[0]
    assert sel["class"] == "task-select" and sel["data-group"] == "run-1-audit"
    views = page.find("div", **{"class": "task-view"})
    assert [v["data-task"] for v in views] == ["all", "0", "1", "2"]
    assert "hidden" not in views[0] and all("hidden" in v for v in views[1:])
    # the numbers come from results.json
    res = json.loads((runs["hdqt"] / "results.json").read_text())
    total = costreport.fmt_energy(res["cost"]["total"]["energy_pj"] * 1e-6)
    assert re.search(rf'id="run-1-cost-total">{re.escape(total)} uJ over', text)
    for t in res["tasks"]:
        assert f"{t['cnn']:.2f}" in text
    mat = accuracy_matrix(res)
    assert f"{mat[-1][0]:.1f}" in text.split('id="run-1-matrix-table"')[1]
    # one run: its settings, no marks
    assert "differs" not in text.split('id="settings"')[1].split("</section>")[0].replace(
        "only-differs", "")


def test_report_of_two_runs_marks_the_settings_that_differ_and_escapes(runs, tmp_path):
    out = tmp_path / "two.html"
    r = report([str(runs["hdqt"]), str(runs["fp"]), "-o", str(out), "--label", "<b>bold</b> & co",
                "--label", "fp", "--title", "<script>alert(1)</script>"])
    assert r.exit_code == 0, r.output + r.stderr
    text = out.read_text()
    page = assert_self_contained(text)
    assert {"settings", "accuracy", "run-1", "run-2", "run-2-audit", "run-2-cost"} <= page.ids()
    # labels and title are text, not markup
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "alert(1)" not in "".join(page.script)
    # arith differs, the dataset does not; the rows say so
    rows = {a["data-key"]: a for a in page.find("tr") if "data-key" in a}
    assert rows["arith"].get("class") == "differs" and rows["arith"]["data-differs"] == "1"
    assert "class" not in rows["dataset"] and "data-differs" not in rows["dataset"]
    keys, _, differs = settings_table([json.loads((runs[n] / "results.json").read_text())
                                       for n in ("hdqt", "fp")])
    assert {k for k, a in rows.items() if a.get("class") == "differs"} == differs
    assert "arith" in differs and "seed" not in differs
    assert page.find("input", id="settings-only-differs")
    # the FP run has no audit, and says so
    fp = text.split('id="run-2-audit"')[1].split("</div>")[0]
    assert "no audit" in fp


def test_report_of_a_sweep(sweep, runs, tmp_path):
    out = tmp_path / "sweep.html"
    r = report([str(sweep), "-o", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    text = out.read_text()
    page = assert_self_contained(text)
    assert {"sweep-1", "sweep-1-table", "sweep-1-table-rows", "sweep-1-axis",
            "sweep-1-cnn_avg-chart", "sweep-1-sat_pct-chart", "sweep-1-pareto",
            "sweep-1-pareto-table", "settings", "accuracy", "runs"} <= page.ids()
    assert {f"run-{i}" for i in range(1, 5)} <= page.ids() and "run-5" not in page.ids()
    # a row per grid point (acc_bits 6, 8), each linking to its two seeds' sections
    table = text.split('id="sweep-1-table-rows"')[1].split("</table>")[0]
    rows = re.findall(r"<tr data-order=.*?</tr>", table)
    assert len(rows) == 2
    for row in rows:
        assert len(re.findall(r'href="#run-\d"', row)) == 2
    assert re.search(r'data-value="6"', rows[0]) and re.search(r'data-value="8"', rows[1])
    # the settings that differ: acc_bits and seed, marked
    rows = {a["data-key"]: a for a in page.find("tr") if "data-key" in a}
    assert {k for k, a in rows.items() if a.get("class") == "differs"} == {"acc_bits", "seed"}
    # the runs of the sweep are labelled by their grid point
    assert "acc_bits=6 seed=1" in text
    # a sweep and a run in one report: the run first, then the sweep's runs
    r = report([str(runs["hdqt"]), str(sweep), "-o", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    page = assert_self_contained(out.read_text())
    assert {"sweep-1", "run-1", "run-5"} <= page.ids()
    assert 'href="#run-2"' in out.read_text().split('id="sweep-1-table-rows"')[1]


def test_many_runs_list_the_settings_that_differ_one_row_per_run(sweep, tmp_path):
    res = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    runs = [RunInput(name=f"r{i}", label=f"r{i}", results=r) for i, r in enumerate(res * 2)]
    text = build_report(runs)
    page = assert_self_contained(text)
    assert {"settings-differ-table", "settings-table"} <= page.ids()
    heads = {a["data-key"] for a in page.find("th") if a.get("data-differs") == "1"}
    assert heads == {"acc_bits", "seed"}


def test_results_without_per_class_accuracies_cost_or_audit(tmp_path):
    """Hand-made results.json (as older or migrated runs): each part says what is missing."""
    res = {"config": {"method": "icarl", "arith": "fp"}, "run": {"acc_limit": None},
           "complete": True,
           "tasks": [{"task": 0, "classes_seen": 2, "cnn": 90.0, "nme": None},
                     {"task": 1, "classes_seen": 4, "cnn": 70.0, "nme": None}],
           "summary": {"cnn": {"avg": 80.0, "last": 70.0, "forgetting": 5.0}}}
    (tmp_path / "old").mkdir()
    runio.atomic_write_json(tmp_path / "old" / "results.json", res)
    out = tmp_path / "r.html"
    r = report([str(tmp_path / "old"), "-o", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    text = out.read_text()
    page = assert_self_contained(text)
    assert {"run-1-matrix", "run-1-audit", "run-1-cost", "accuracy-cnn-chart"} <= page.ids()
    assert "accuracy-nme-chart" not in page.ids()
    assert "no per-class accuracies" in text and "no audit" in text and "no cost record" in text


def test_accuracy_matrix_and_forgetting():
    res = {"tasks": [{"classes": [0, 1], "per_class_cnn": [80.0, 60.0]},
                     {"classes": [2, 3], "per_class_cnn": [40.0, 20.0, 90.0, 70.0]},
                     {"classes": [4], "per_class_cnn": [50.0, 50.0, 30.0, 90.0, 10.0]}]}
    assert accuracy_matrix(res) == [[70.0], [30.0, 80.0], [50.0, 60.0, 10.0]]
    assert matrix_forgetting(accuracy_matrix(res)) == [20.0, 20.0]
    assert accuracy_matrix({"tasks": [{"cnn": 1.0}]}) is None
    assert matrix_forgetting([[50.0]]) == []
    # the matrix results.json records (per test sample, every scenario) comes first
    stored = {**res, "summary": {"cnn": {"by_task": {"matrix": [[71.0], [33.0, 79.0],
                                                                  [52.0, 61.0, None]]}}}}
    assert accuracy_matrix(stored) == [[71.0], [33.0, 79.0], [52.0, 61.0, None]]
    assert matrix_forgetting(accuracy_matrix(stored)) == [19.0, 18.0]


def test_ticks_are_round_and_told_apart():
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert tick_texts(nice_ticks(1.2218, 1.2396)) == ["1.220", "1.225", "1.230", "1.235", "1.240"]
    assert tick_texts([0, 2.5, 5]) == ["0.0", "2.5", "5.0"]


def test_report_needs_no_matplotlib(runs, tmp_path, monkeypatch):
    real = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)
    for mod in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_mpl)
    out = tmp_path / "r.html"
    r = report([str(runs["hdqt"]), "-o", str(out)])
    assert r.exit_code == 0, r.output + r.stderr
    assert "<svg" in out.read_text()


def test_bad_input_is_one_line_and_exit_2(runs, sweep, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{oops")
    (tmp_path / "notrun").mkdir()
    (tmp_path / "notrun" / "results.json").write_text('{"a": 1}')
    (tmp_path / "nosweep").mkdir()
    (tmp_path / "nosweep" / "sweep.json").write_text('{"runs": {"k": {"label": "seed=1"}}}')
    (tmp_path / "badsweep").mkdir()
    (tmp_path / "badsweep" / "sweep.json").write_text("[1, 2")
    res = json.loads((runs["hdqt"] / "results.json").read_text())
    res["cost"]["by_layer"] = {"fc1": 5}
    (tmp_path / "badcost").mkdir()
    runio.atomic_write_json(tmp_path / "badcost" / "results.json", res)
    run = str(runs["hdqt"])
    out = tmp_path / "o.html"
    cases = [
        ([str(tmp_path / "missing")], "run folder not found"),
        ([str(tmp_path / "empty")], "has no results.json"),
        ([str(tmp_path / "bad")], "is not valid JSON"),
        ([str(tmp_path / "notrun")], "is not an intsim results file"),
        ([str(tmp_path / "nosweep")], "no finished run in this sweep"),
        ([str(tmp_path / "badsweep")], "is not valid JSON"),
        ([run, str(tmp_path / "missing")], "run folder not found"),
        ([str(tmp_path / "badcost")], "badcost: results.json 'cost' is not a cost record"),
        ([run, "--energy-table", str(tmp_path / "none.toml")], "energy table not found"),
        ([run, "-o", str(tmp_path / "nodir" / "r.html")], "folder"),
        ([run, "-o", str(tmp_path)], "is a folder"),
        ([run, "--label", "a", "--label", "b"], "--label given 2 time(s) for 1 run(s)"),
        ([run, str(sweep), "--label", "a", "--label", "b"], "--label given 2"),
        ([], "Missing argument"),
    ]
    for args, msg in cases:
        a = args if "-o" in args or not args else args + ["-o", str(out)]
        r = report(a)
        assert r.exit_code == 2, (args, r.output, r.stderr)
        assert r.stderr.startswith("intsim: error: ") and r.stderr.count("\n") == 1, r.stderr
        assert msg in r.stderr, (msg, r.stderr)
        assert r.stdout == ""
    assert not out.exists()
