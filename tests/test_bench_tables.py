"""The benchmark grids: every SPEC in benchmarks/specs finds its committed runs, and
each table script (benchmarks/*.py) finds every run of its SPEC in a sweep and
writes its table from them (tiny synthetic sweeps)."""
import glob
import json
import os
import sys
import tomllib

import pytest

from intsim.app import jobs as ex
from intsim.app import sweep as sw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "benchmarks", "results", "runs")
SPECS = os.path.join(ROOT, "benchmarks", "specs")
QUICK = os.path.join(SPECS, "quick.toml")
OVERLAYS = {"quick"}                    # the overlay files among benchmarks/specs/*.toml
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def load_benchmark_spec(path, overlays=()):
    """A committed SPEC as `intsim sweep` loads it; a SPEC that reads a download
    (``data``) gets an existing folder in its place where that download is absent (its
    runs are then found by their other settings: the run keys hash the data path)."""
    with open(path, "rb") as f:
        base = tomllib.load(f).get("base", {})
    sets = []
    if "data" in base and not os.path.isdir(os.path.join(os.path.dirname(path), base["data"])):
        sets = [f"data={ROOT}"]
    return sw.load_spec(path, sw.make_overlay(list(overlays), sets))


def benchmark_specs():
    return sorted(p for p in glob.glob(os.path.join(SPECS, "*.toml"))
                  if os.path.splitext(os.path.basename(p))[0] not in OVERLAYS)


# ---------------------------------------------------------------- the committed grids

#: SPECs whose runs are not all committed yet (docs/results.md says which studies are running)
PENDING: set = set()
#: the committed runs: every other SPEC in full, and the QUICK variants of the former-split
#: grids
COMMITTED = [(os.path.basename(p), None) for p in benchmark_specs()
             if os.path.basename(p) not in PENDING] + \
    [(name, QUICK) for name in ("reproduce_hapt.toml", "sweep_acc.toml", "ablate.toml")]


def _without_data(settings: dict) -> str:
    return json.dumps({k: v for k, v in settings.items() if k != "data"}, sort_keys=True)


def _stored_by_settings() -> dict:
    """{settings but the data path: folder} of the complete runs in RUNS."""
    out = {}
    for d in os.listdir(RUNS):
        try:
            with open(os.path.join(RUNS, d, "results.json")) as f:
                res = json.load(f)
        except OSError:
            continue
        if res.get("complete"):
            out[_without_data(ex.settings(res["config"]))] = d
    return out


def test_every_committed_run_folder_is_a_run_of_a_spec():
    """The run-folder key scheme: each SPEC (with its overlay) names exactly the
    folders in benchmarks/results/runs, found complete (or diverged: an outcome) with
    their settings. A SPEC
    that reads a download (``data``) names its folders by where the data lies, so its
    runs are found by their other settings."""
    found = set()
    by_settings = None
    for name, overlay in COMMITTED:
        spec = load_benchmark_spec(os.path.join(SPECS, name), [overlay] if overlay else [])
        assert spec.out == os.path.normpath(RUNS), name
        if any(r.resolved.data is not None for r in spec.runs):
            by_settings = _stored_by_settings() if by_settings is None else by_settings
            keys = [by_settings.get(_without_data(r.settings())) for r in spec.runs]
            assert None not in keys, (name, [r.key for r, k in zip(spec.runs, keys) if k is None])
            found |= set(keys)
            continue
        missing = [r.key for r, st in sw.plan(spec.runs, RUNS) if st not in ("done", "diverged")]
        assert not missing, (name, overlay, missing)
        found |= {r.key for r in spec.runs}
    stored = {d for d in os.listdir(RUNS) if os.path.isdir(os.path.join(RUNS, d))}
    assert stored == found


def test_benchmark_specs_use_the_papers_seeds_in_order():
    sizes = {}
    for p in benchmark_specs():
        seeds = load_benchmark_spec(p).seeds()
        assert tuple(seeds) == ex.HAR_SEEDS[:len(seeds)], p
        sizes[os.path.basename(p)] = len(seeds)
    assert sizes == {"ablate.toml": 3, "ablate_paper.toml": 3, "reproduce_hapt.toml": 3,
                     "reproduce_hapt_paper.toml": 5, "split_compare.toml": 20,
                     "sweep_acc.toml": 1, "sweep_acc_paper.toml": 1, "pareto.toml": 3,
                     "tile_sweep.toml": 3, "scenarios.toml": 5, "transformer.toml": 3}
    quick = sw.load_spec(os.path.join(SPECS, "reproduce_hapt.toml"), sw.make_overlay([QUICK]))
    assert quick.seeds() == [ex.HAR_SEEDS[0]] and {r.resolved.epochs for r in quick.runs} == {10}
    assert len(quick.runs) == 10


# ---------------------------------------------------------------- table scripts

TINY = ('[base]\ndataset = "synthetic"\nschedule = "paper"\nepochs = 1\nhidden = [16, 16]\n'
        'memory = 24\nbatch_size = 32\nthreads = 1\n')
HDQT = '{ arith = "hdqt", bits = 4, acc_bits = 8, tile = 32, acc_mode = "clamp" }'
TINY_SPECS = {
    "reproduce_hapt": (f'{TINY}\n[grid]\nmethod = ["lwf", "icarl"]\n'
                       f'arith = [{{ arith = "fp" }}, {HDQT}]\nseed = [1, 2]\n'
                       '[[runs]]\nmethod = "icarl"\narith = "luq"\nacc_bits = "none"\nseed = 1\n'),
    "sweep_acc": (f'{TINY}method = "icarl"\nseed = 1\narith = "hdqt"\nbits = 4\ntile = 32\n'
                  '[grid]\nacc_bits = [6, 8]\nacc_mode = ["clamp", "wrap"]\n'
                  '[[runs]]\nacc_bits = "none"\n[[runs]]\narith = "fp"\n'),
    "ablate": (f'{TINY}method = "icarl"\narith = "hdqt"\nbits = 4\nacc_bits = 8\ntile = 32\n'
               '[grid]\nsetting = [{ arith = "fp" }, { arith = "hdqt" }, { hadamard = false }, '
               '{ bits = 3 }]\nseed = [1, 2]\n'),
    "split_compare": (f'{TINY}method = "icarl"\n[grid]\narith = [{{ arith = "fp" }}, {HDQT}]\n'
                      'seed = [1, 2]\n'),
    "cost_tables": (f'{TINY}method = "icarl"\n[grid]\narith = ["hdqt", "luq"]\n'
                    'pair = [{ bits = 4, acc_bits = 8 }, { bits = 8, acc_bits = 16 }]\n'
                    'seed = [1, 2]\n'),
    "scenario_tables": (f'{TINY}method = "finetune"\n[grid]\nscenario = ["task", "domain"]\n'
                        f'arith = [{{ arith = "fp" }}, {HDQT}]\nseed = [1, 2]\n'),
    "transformer_tables": (
        TINY.replace("hidden = [16, 16]", 'model = "tokens.toml"') +
        '[grid]\nsetting = [{ method = "finetune", init_classes = 6 }, { method = "icarl" }]\n'
        f'arith = [{{ arith = "fp" }}, {HDQT}, {HDQT[:-2]}, attn_products = "none" }}]\n'
        'seed = [1, 2]\n'),
}
#: the model file of the transformer table's tiny SPEC: 24 synthetic features as 4 tokens
TOKENS_MODEL = """
input = [4, 6]
quantize_products = ["qk", "av"]
layers = [
  { kind = "linear", name = "embed", out = 8 },
  { kind = "position" },
  { kind = "residual", name = "attn", layers = [{ kind = "layernorm" }, { kind = "attention", name = "mhsa", heads = 2 }] },
  { kind = "residual", name = "mlp", layers = [{ kind = "linear", name = "fc1", out = 8 }, { kind = "gelu" }, { kind = "linear", name = "fc2", out = 8 }] },
  { kind = "token_mean" },
]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The tiny SPECs, each with `out = "runs"`, and one sweep of all their runs."""
    d = tmp_path_factory.mktemp("grids")
    (d / "tokens.toml").write_text(TOKENS_MODEL)
    paths = {}
    for name, text in TINY_SPECS.items():
        paths[name] = d / f"{name}.toml"
        paths[name].write_text(f'out = "runs"\n{text}')
    runs = [r for p in paths.values() for r in sw.load_spec(p).runs]
    with open(os.devnull, "w") as log:
        res = sw.run_sweep(runs, d / "runs", sw.LocalExecutor(2), log=log)
    assert all(e["status"] == "done" for e in res.values())
    assert len(res) == 43                   # the SPECs share runs: each is run once
    return d, paths


def table(path):
    """(rows as lists of cells of the first markdown table, the notes) of a written table."""
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[start:end]
            if ln.startswith("| ")]
    return rows[1:], [ln for ln in lines if ln and not ln.startswith(("|", "#"))]


def _run(script, argv, capsys):
    mod = __import__(script)
    mod.main(argv)
    return capsys.readouterr()


@pytest.mark.parametrize("script, n_runs, n_rows", [("reproduce_hapt", 9, 8),
                                                     ("sweep_acc", 6, 6),
                                                     ("ablate", 8, 4),
                                                     ("split_compare", 4, 4),
                                                     ("cost_tables", 8, 4),
                                                     ("scenario_tables", 8, 4),
                                                     ("transformer_tables", 12, 6)])
def test_each_table_script_finds_every_run_of_its_spec(swept, tmp_path, capsys, script,
                                                        n_runs, n_rows):
    d, paths = swept
    spec = sw.load_spec(paths[script])
    assert len(spec.runs) == n_runs
    out = _run(script, ["--spec", str(paths[script]), "--tables", str(tmp_path)], capsys)
    rows, notes = table(tmp_path / f"{script}.md")
    assert len(rows) == n_rows, rows
    assert f"Compute: {n_runs} runs," in "\n".join(notes) and "not finished" not in out.err
    assert "NOT the paper protocol" in notes[2]           # 1 epoch a task
    seeds_col = [int(r[-1]) for r in rows]
    if script == "ablate":
        assert seeds_col == [2, 2, 2, 2]
    # every figure is there: no '-' where a run's figure belongs
    assert all(r[2] != "-" and r[3] != "-" for r in rows), rows
    # the reproducing command is printed and written
    cmd = (f"intsim sweep {paths[script]} && python benchmarks/{script}.py --spec "
           f"{paths[script]} --tables {tmp_path}")
    assert f"reproduce: {cmd}" in out.out and f"Command: `{cmd}`" in notes[0]


def test_reproduce_hapt_rows_are_the_runs_figures(swept, tmp_path, capsys):
    d, paths = swept
    _run("reproduce_hapt", ["--spec", str(paths["reproduce_hapt"]), "--tables", str(tmp_path)],
         capsys)
    rows, notes = table(tmp_path / "reproduce_hapt.md")
    assert [r[:2] for r in rows] == [
        ["LwF", "FP"], ["LwF", "HDQT 4/8"], ["iCaRL (CNN)", "FP"], ["iCaRL (CNN)", "HDQT 4/8"],
        ["iCaRL (CNN)", "LUQ 4/wide"], ["iCaRL (NME)", "FP"], ["iCaRL (NME)", "HDQT 4/8"],
        ["iCaRL (NME)", "LUQ 4/wide"]]
    runs = {(r.config.method, r.config.arith, r.config.seed): r
            for r in sw.load_spec(paths["reproduce_hapt"]).runs}
    summ = {k: ex.run_summary(sw.load_done(r, d / "runs")) for k, r in runs.items()}
    icarl_fp = [summ[("icarl", "fp", s)]["cnn_avg"] for s in (1, 2)]
    assert rows[2][3] == ex.fmt_pm(icarl_fp)
    gap = [summ[("icarl", "hdqt", s)]["nme_avg"] - summ[("icarl", "fp", s)]["nme_avg"]
           for s in (1, 2)]
    assert rows[6][7] == ex.fmt_pm(gap)                       # paired by seed
    assert rows[4][-1] == "1" and "LUQ 4/wide: fewer seeds" in "\n".join(notes)


def test_an_overlay_names_the_table_and_missing_runs_show_as_dashes(swept, tmp_path, capsys):
    d, paths = swept
    ov = tmp_path / "short.toml"
    ov.write_text("seeds = 1\n")
    _run("split_compare", ["--spec", str(paths["split_compare"]), "--overlay", str(ov),
                           "--tables", str(tmp_path)], capsys)
    rows, notes = table(tmp_path / "split_compare_short.md")
    assert [r[-1] for r in rows] == ["1"] * 4 and f"--overlay {ov}" in notes[0]

    more = d / "more.toml"                  # seed 3 was never swept
    more.write_text(paths["split_compare"].read_text().replace("seed = [1, 2]", "seed = [1, 2, 3]"))
    out = _run("split_compare", ["--spec", str(more), "--tables", str(tmp_path)], capsys)
    rows, notes = table(tmp_path / "more.md")
    assert [r[-1] for r in rows] == ["2"] * 4
    assert "2 run(s) not finished yet (shown as '-')" in "\n".join(notes)
    assert f"2 of 6 runs not finished yet (shown as '-'); run: intsim sweep {more}" in out.err

    # bad input: one line, exit code 2
    with pytest.raises(SystemExit) as e:
        _run("split_compare", ["--spec", str(more), "--seeds", "4"], capsys)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot keep its first 4" in err


def test_cost_table_has_energy_the_pareto_front_and_the_papers_ratios(swept, tmp_path, capsys):
    d, paths = swept
    _run("cost_tables", ["--spec", str(paths["cost_tables"]), "--tables", str(tmp_path)],
         capsys)
    rows, notes = table(tmp_path / "cost_tables.md")
    assert [r[:3] for r in rows] == [["hdqt", "4", "8"], ["hdqt", "8", "16"],
                                     ["luq", "4", "8"], ["luq", "8", "16"]]
    energy = [float(r[6].split()[0].replace(",", "")) for r in rows]
    assert all(e > 0 for e in energy)
    assert energy[1] > energy[0] and energy[3] > energy[2]          # wider datapaths cost more
    assert rows[0][8] == "1.000"                                   # energy / first row
    assert any(r[9] == "yes" for r in rows)                        # a Pareto front
    text = "\n".join(notes)
    for what in ("run energy", "MAC-array energy"):
        assert f"hdqt: {what} 8_16 / 4_8 = " in text and f"LUQ / HDQT {what} at 4_8 = " in text
    assert (tmp_path / "cost_tables.png").exists()


def test_transformer_tables_give_saturation_by_product(swept, tmp_path, capsys):
    d, paths = swept
    _run("transformer_tables", ["--spec", str(paths["transformer_tables"]),
                                "--tables", str(tmp_path)], capsys)
    rows, notes = table(tmp_path / "transformer_tables.md")
    assert [r[:2] for r in rows] == [
        ["single-task", "FP"], ["single-task", "HDQT 4/8"],
        ["single-task", "HDQT 4/8, attention fp32"], ["icarl", "FP"], ["icarl", "HDQT 4/8"],
        ["icarl", "HDQT 4/8, attention fp32"]]
    assert rows[0][3] == rows[0][2] and rows[3][3] != rows[3][2]   # one task: avg inc = last
    text = (tmp_path / "transformer_tables.md").read_text()
    sat = [ln for ln in text[text.index("Saturation by product"):].splitlines()
           if ln.startswith("| single-task | HDQT") or ln.startswith("| icarl | HDQT")]
    assert len(sat) == 4
    cols = ["embed", "qkv", "qk", "av", "proj", "fc1", "fc2", "classifier"]

    def cell(line, kind, p):
        return line.strip("|").split("|")[2 + 2 * cols.index(kind) + (p == "bwd")].strip()
    # attention fp32: Q K^T and A V are not on the datapath, the rest is
    assert cell(sat[1], "qk", "fwd") == "-" and cell(sat[1], "av", "fwd") == "-"
    assert cell(sat[0], "qk", "fwd") != "-" and cell(sat[1], "fc1", "fwd") != "-"
    # a cell is the pooled share of the runs' audits
    runs = [r for r in sw.load_spec(paths["transformer_tables"]).runs
            if r.config.method == "finetune" and r.config.arith == "hdqt"
            and r.config.attn_products == "file"]
    s = t = 0
    for r in runs:
        res = sw.load_done(r, d / "runs")
        for rec in res["tasks"]:
            for site, passes in rec["audit"].items():
                if site.endswith(".fc1"):
                    s += passes["forward"]["saturated"]
                    t += passes["forward"]["tiles"]
    assert t > 0 and cell(sat[0], "fc1", "fwd") == f"{100.0 * s / t:.2f}"


def test_a_diverged_run_is_named_in_the_notes_and_left_out_of_the_figures(swept, tmp_path,
                                                                           capsys):
    """A run that diverged (its results.json incomplete, its log ending with the diverged
    event) is an outcome: the table's seeds column leaves it out, the notes name it with
    where and why, and it is not counted as still to run."""
    import shutil
    d, paths = swept
    runs = tmp_path / "runs"
    shutil.copytree(d / "runs", runs)
    spec = sw.load_spec(paths["scenario_tables"])
    victim = next(r for r in spec.runs if r.config.arith == "hdqt" and r.config.seed == 2
                  and r.config.scenario == "task")
    res_path = runs / victim.key / "results.json"
    res = json.loads(res_path.read_text())
    res["complete"] = False
    res_path.write_text(json.dumps(res))
    with open(runs / victim.key / "log.jsonl", "a") as f:
        f.write(json.dumps({"event": "diverged", "tasks_done": 1, "task": 1, "stage": "train",
                            "epoch": 1, "batch": 3, "cause": "made up for the test"}) + "\n")
    out = _run("scenario_tables", ["--spec", str(paths["scenario_tables"]), "--out", str(runs),
                                   "--tables", str(tmp_path)], capsys)
    rows, notes = table(tmp_path / "scenario_tables.md")
    row = next(r for r in rows if r[:3] == ["task", "finetune", "HDQT 4/8"])
    assert row[-1] == "1"
    text = "\n".join(notes)
    assert "Diverged (1, left out of the figures): " in text
    assert f"{victim.label}: task 2, epoch 1: made up for the test" in text
    assert "not finished" not in text and "not finished" not in out.err
