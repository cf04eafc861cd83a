"""The energy model (intsim.cost.energy, intsim.cost.record) and its reports:
the packaged table and its sources, each scaling rule on hand-computed values,
user tables and their one-line errors, pricing, the results.json cost object,
and ``intsim audit --cost`` / ``intsim compare`` on run folders written here."""
import json
import math
from importlib import resources

import pytest
from click.testing import CliRunner

from intsim.app import costreport
from intsim.cli import main
from intsim.cost.energy import REQUIRED_OPS, interpolate, load_table, operand
from intsim.cost.record import (cost_record, merge_cost_records, record_counts, reprice)

TEXT = resources.files("intsim.cost").joinpath("energy_45nm.toml").read_text()


@pytest.fixture(scope="module")
def table():
    return load_table()


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write_table(tmp_path, text, name="mine.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------- the table

def test_packaged_table_cites_its_sources(table):
    assert table.name == "45nm" and table.integer == "horowitz"
    assert "Horowitz" in table.source and "hwcomponents" in table.source
    for cite in ("Computing's energy problem (and what we can do about it)", "ISSCC 2014",
                 "Aladdin", "ISCA 2014", "hwcomponents"):
        assert cite in TEXT
    assert set(table.integer_tables) == {"horowitz", "aladdin"}
    assert table.info() == {"name": "45nm", "integer": "horowitz", "source": table.source}


@pytest.mark.parametrize("op, pj", [
    ("add:int8", 0.03), ("add:int32", 0.1), ("mul:int8*int8", 0.2), ("mul:int32*int32", 3.1),
    ("add:fp16", 0.4), ("mul:fp16*fp16", 1.1), ("add:fp32", 0.9), ("mul:fp32*fp32", 3.7),
    ("mem:read", 10 / 8), ("mem:write", 10 / 8)])
def test_horowitz_points_are_reproduced(table, op, pj):
    assert table.energy_pj(op) == pytest.approx(pj, rel=1e-12)


@pytest.mark.parametrize("op, pj", [
    ("mul:int4*int4", 0.228), ("mul:int8*int8", 0.912), ("mul:int16*int16", 3.648),
    ("add:int8", 0.060), ("add:int16", 0.121), ("add:int32", 0.242),
    ("mul:int32*int32", 3.648 * 4),                       # above the points: proportional
    ("add:int12", 0.060 + (0.121 - 0.060) / 2)])          # between: linear
def test_aladdin_reference_points(table, op, pj):
    for t in (load_table(integer="aladdin"), table.with_integer("aladdin")):
        assert t.integer == "aladdin"
        assert t.energy_pj(op) == pytest.approx(pj, rel=1e-12)
    assert table.energy_pj("mul:int8*int8") == 0.2             # the table itself is unchanged


# ---------------------------------------------------------------- scaling rules

H_ADD = ((8, 0.03), (32, 0.1))


@pytest.mark.parametrize("op, pj", [
    # integer multipliers: quadratic in bits, a*b for mixed widths, from the 8-bit point
    ("mul:int4*int4", 0.2 * (4 * 4) / (8 * 8)),
    ("mul:int4*int8", 0.2 * (4 * 8) / (8 * 8)),
    ("mul:int8*int4", 0.2 * (4 * 8) / (8 * 8)),             # operands in either order
    ("mul:int2*int4", 0.2 * 8 / 64),
    # between the 8- and 32-bit points: linear in a*b
    ("mul:int16*int16", 0.2 + (256 - 64) / (1024 - 64) * (3.1 - 0.2)),
    ("mul:int64*int64", 3.1 * 4096 / 1024),
    # integer adders: linear in bits
    ("add:int4", 0.03 * 4 / 8),
    ("add:int12", 0.03 + (12 - 8) / (32 - 8) * (0.1 - 0.03)),
    ("add:int24", 0.03 + (24 - 8) / (32 - 8) * (0.1 - 0.03)),
    ("add:int64", 0.1 * 2),
    ("add:uint8", 0.03),
    # float multipliers: (man + 1)^2, (ma + 1)(mb + 1) for mixed formats
    ("mul:bf16*bf16", 1.1 * 8 * 8 / (11 * 11)),
    ("mul:e4m3*e4m3", 1.1 * 4 * 4 / 121),
    ("mul:e4m3*e5m2", 1.1 * 4 * 3 / 121),
    ("mul:fp16*fp32", 1.1 + (11 * 24 - 121) / (576 - 121) * (3.7 - 1.1)),
    ("mul:fp32*int4", 1.1 * 24 * 4 / 121),                 # an int4 is a 4-bit significand
    # float adders: linear in total bits
    ("add:e4m3", 0.4 * 8 / 16), ("add:e5m2", 0.4 * 8 / 16), ("add:bf16", 0.4),
    ("add:lptorch_master", 0.4),                            # 1 + 6 + 9 bits
    # lptorch's tapered 1-3-4: an 8-bit code, 5-bit significands
    ("mul:555555543210*555555543210", 1.1 * 25 / 121), ("mul:fp134*fp134", 1.1 * 25 / 121),
    ("add:555555543210", 0.2),
    # OCP MX: the element's multiply plus one 8-bit add per block of 32 products
    ("mul:mxfp4_e2m1*mxfp4_e2m1", 1.1 * 2 * 2 / 121 + 0.03 / 32),
    ("mul:mxint8*mxint8", 0.2 + 0.03 / 32),
    ("mul:mxfp8_e4m3*mxfp8_e5m2", 1.1 * 12 / 121 + 0.03 / 32),
    ("add:mxfp8_e4m3", 0.2),
    # a multiply by LUQ's log gradient is a shift-add of the other operand's width
    ("mul:log4*int4", 0.03 * 4 / 8), ("mul:int8*log4", 0.03),
    ("mul:log4*fp32", 0.03),                                # a float's exponent: 8 bits
    # a Hadamard transform's additions are adds of their format
    ("had:fp32", 0.9), ("had:int8", 0.03),
    # the [ops] combinations
    ("quant:absmax", 0.1), ("quant:scale", 3.7),
    ("quant:round", 0.03 + 16 / 24 * 0.07), ("rng:bits", 0.1 / 32),
    ("opt:update", 3 * 3.7 + 3 * 0.9)])
def test_scaling_rules(table, op, pj):
    assert table.energy_pj(op) == pytest.approx(pj, rel=1e-12)


def test_interpolate_and_operands():
    assert interpolate(4, H_ADD) == pytest.approx(0.015)
    assert interpolate(20, H_ADD) == pytest.approx(0.065)
    assert interpolate(64, H_ADD) == pytest.approx(0.2)
    assert operand("E4M3") == operand("e4m3") and operand("e4m3").sig == 4
    assert operand("int13").bits == 13 and operand("log4").kind == "log"
    assert operand("555555543210").bits == 8 and operand("mxint8").block == 32
    with pytest.raises(ValueError, match="int65"):
        operand("int65")


def test_energy_grows_with_width(table):
    adds = [table.energy_pj(f"add:int{n}") for n in range(2, 41)]
    muls = [table.energy_pj(f"mul:int{n}*int{n}") for n in range(2, 41)]
    assert all(a < b for a, b in zip(adds, adds[1:]))
    assert all(a < b for a, b in zip(muls, muls[1:]))


@pytest.mark.parametrize("op, match", [
    ("foo", "unknown op class 'foo'"), ("mul:int4", "unknown op class"),
    ("quant:bogus", "unknown op class"), ("add:", "unknown op class"),
    ("mul:xx*int4", "unknown number format 'xx'"), ("add:log4", "logarithmic")])
def test_unknown_op_classes_fail_in_one_line(table, op, match):
    with pytest.raises(ValueError, match=match) as e:
        table.energy_pj(op)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- user tables

def test_user_table_overrides(tmp_path):
    text = (TEXT.replace('name = "45nm"', 'name = "my22nm"')
            .replace('mul = { "8" = 0.2, "32" = 3.1 }', 'mul = { "8" = 0.1, "32" = 1.5 }')
            .replace('"mem:read" = 1.25', '"mem:read" = 0.5')
            + '"mul:int4*int8" = 0.07\n')
    t = load_table(write_table(tmp_path, text))
    assert t.name == "my22nm" and t.path.endswith("mine.toml")
    assert t.energy_pj("mul:int8*int8") == 0.1
    assert t.energy_pj("mul:int4*int4") == pytest.approx(0.1 * 16 / 64)
    assert t.energy_pj("mem:read") == 0.5
    assert t.energy_pj("mul:int4*int8") == 0.07 == t.energy_pj("mul:int8*int4")   # [ops] wins
    alad = load_table(write_table(tmp_path, TEXT.replace('default = "horowitz"',
                                                         'default = "aladdin"'), "a.toml"))
    assert alad.integer == "aladdin" and alad.energy_pj("mul:int4*int4") == 0.228


def test_a_table_with_one_point_per_rule(tmp_path):
    text = """
name = "tiny"
source = "made up for a test"
[integer]
default = "only"
[integer.only]
source = "a test"
add = { "16" = 0.5 }
mul = { "16" = 2.0 }
[float]
source = "a test"
add = { bf16 = 1.0 }
mul = { bf16 = 4.0 }
[ops]
"quant:absmax" = 0.1
"quant:scale" = 0.1
"quant:round" = 0.1
"rng:bits" = 0.0
"opt:update" = { "mul:bf16*bf16" = 2, "add:bf16" = 1 }
"mem:read" = 0
"mem:write" = 0
"quant:clip" = 0.25
"""
    t = load_table(write_table(tmp_path, text))
    assert t.energy_pj("add:int8") == 0.25 and t.energy_pj("mul:int8*int8") == 0.5
    assert t.energy_pj("mul:fp32*fp32") == pytest.approx(4.0 * 576 / 64)
    assert t.energy_pj("add:fp32") == 2.0 and t.energy_pj("opt:update") == 9.0
    assert t.energy_pj("quant:clip") == 0.25                # a table may add op classes


BAD = [
    (lambda s: s.replace('name = "45nm"\n', ''), "missing key name"),
    (lambda s: 'colour = "red"\n' + s, "colour: unknown key"),
    (lambda s: s.replace('"8" = 0.03', '"8" = -0.03'), 'integer.horowitz.add.8 must be a number'),
    (lambda s: s.replace('"32" = 3.1', '"32" = "fast"'), "integer.horowitz.mul.32 must be a number"),
    (lambda s: s.replace('add = { "8" = 0.03', 'add = { "x8" = 0.03'), "integer.horowitz.add.x8"),
    (lambda s: s.replace('add = { fp16 = 0.4', 'add = { int8 = 0.4'), "float.add.int8"),
    (lambda s: s.replace('add = { fp16 = 0.4', 'add = { bf16 = 0.5, fp16 = 0.4'),
     "float.add.fp16: same cost variable"),
    (lambda s: s.replace('default = "horowitz"', 'default = "cmos"'), "integer.default"),
    (lambda s: s.replace('"mem:write" = 1.25\n', ''), 'missing key ops."mem:write"'),
    (lambda s: s.replace('{ "add:int24" = 1 }', '{ "add:int24x" = 1 }'), "ops.quant:round"),
    (lambda s: s.replace('{ "add:int24" = 1 }', '{ "rng:bits" = 1 }')
     .replace('{ "add:int32" = 0.03125 }', '{ "quant:round" = 1 }'), "in terms of itself"),
    (lambda s: s.replace('"mem:read" = 1.25', '"mem:read" = { }'), "ops.mem:read"),
    (lambda s: s.replace('[float]', '[float'), "is not valid TOML"),
    (lambda s: s.replace('source = "Horowitz, ISSCC 2014, 45 nm"\n', ''), "missing key float.source"),
    (lambda s: s.replace('mul = { "4" = 0.228', 'mul = { "4" = true'), "integer.aladdin.mul.4"),
]


@pytest.mark.parametrize("edit, match", BAD)
def test_bad_tables_fail_in_one_line(tmp_path, edit, match):
    text = edit(TEXT)
    assert text != TEXT
    p = write_table(tmp_path, text)
    with pytest.raises(ValueError) as e:
        load_table(p)
    msg = str(e.value)
    assert "\n" not in msg and match in msg and str(p) in msg, msg


def test_missing_table_and_unknown_reference(tmp_path):
    with pytest.raises(ValueError, match="energy table not found"):
        load_table(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match="no reference table 'cmos'"):
        load_table(integer="cmos")


# ---------------------------------------------------------------- pricing

COUNTS = {"mul:int4*int4": 1000, "add:int8": 1000, "add:int32": 10, "quant:absmax": 20,
          "quant:scale": 20, "quant:round": 20, "rng:bits": 640, "mem:read": 100}


def test_price_a_hand_made_opcounts(table):
    p = table.price(COUNTS)
    e = {"mul:int4*int4": 1000 * 0.05, "add:int8": 1000 * 0.03, "add:int32": 10 * 0.1,
         "quant:absmax": 20 * 0.1, "quant:scale": 20 * 3.7,
         "quant:round": 20 * (0.03 + 16 / 24 * 0.07), "rng:bits": 640 * 0.1 / 32,
         "mem:read": 100 * 1.25}
    assert p["macs"] == 1000
    assert p["energy_pj"] == pytest.approx(sum(e.values()))
    assert list(p["by_class"]) == sorted(COUNTS)
    for op, v in p["by_class"].items():
        assert v["count"] == COUNTS[op] and v["energy_pj"] == pytest.approx(e[op])
    assert table.price({}) == {"macs": 0, "energy_pj": 0.0, "by_class": {}}
    with pytest.raises(ValueError, match="unknown op class 'mul:'"):
        table.price({"mul:": 1})
    with pytest.raises(ValueError, match="integer >= 0"):
        table.price({"add:int8": -1})


# ---------------------------------------------------------------- cost records

def by_layer(scale=1):
    return {"fc1": {"forward": {"mul:int4*int4": 600 * scale, "add:int8": 600 * scale,
                                "quant:scale": 50 * scale},
                    "backward_input": {"mul:int4*int4": 600 * scale, "had:fp32": 90 * scale,
                                       "rng:bits": 320 * scale},
                    "backward_weight": {"mul:int4*int4": 600 * scale, "add:int32": 30 * scale},
                    "optimizer": {"opt:update": 60}},
            "fc2": {"forward": {"mul:int4*int4": 100 * scale, "add:int8": 100 * scale,
                                "mem:write": 40 * scale},
                    "optimizer": {"opt:update": 10}}}


def test_cost_record_totals_are_the_sums(table):
    rec = cost_record(by_layer(), table)
    json.dumps(rec)
    assert rec["table"] == table.info()
    assert list(rec["by_layer"]) == ["fc1", "fc2"]
    assert list(rec["by_pass"]) == ["forward", "backward_input", "backward_weight", "optimizer"]
    entries = [e for passes in rec["by_layer"].values() for e in passes.values()]
    assert rec["total"]["macs"] == sum(e["macs"] for e in entries) == 1900
    assert rec["total"]["energy_pj"] == pytest.approx(sum(e["energy_pj"] for e in entries))
    assert rec["total"]["energy_pj"] == pytest.approx(
        sum(p["energy_pj"] for p in rec["by_pass"].values()))
    for p, tot in rec["by_pass"].items():
        layer_entries = [ps[p] for ps in rec["by_layer"].values() if p in ps]
        assert tot["macs"] == sum(e["macs"] for e in layer_entries)
        assert tot["energy_pj"] == pytest.approx(sum(e["energy_pj"] for e in layer_entries))
    fwd = rec["by_layer"]["fc1"]["forward"]
    assert fwd["macs"] == 600
    assert fwd["by_class"]["mul:int4*int4"] == {"count": 600, "energy_pj": pytest.approx(30.0)}
    assert fwd["energy_pj"] == pytest.approx(600 * 0.05 + 600 * 0.03 + 50 * 3.7)
    assert rec["total"]["by_class"]["opt:update"]["count"] == 70
    assert record_counts(rec) == by_layer()


def test_reprice_keeps_the_counts(table, tmp_path):
    rec = cost_record(by_layer(), table)
    double = TEXT
    for a, b in (("0.03,", "0.06,"), ('"32" = 0.1 }', '"32" = 0.2 }'), ("0.4,", "0.8,"),
                 ("0.2,", "0.4,"), ('"32" = 3.1 }', '"32" = 6.2 }'), ("0.9 }", "1.8 }"),
                 ("1.1,", "2.2,"), ("3.7 }", "7.4 }"), ("= 1.25", "= 2.5")):
        assert a in double
        double = double.replace(a, b)
    again = reprice(rec, load_table(write_table(tmp_path, double)))
    assert record_counts(again) == record_counts(rec)
    assert again["total"]["energy_pj"] == pytest.approx(2 * rec["total"]["energy_pj"])


def test_merge_cost_records(table):
    a, b = cost_record(by_layer(1), table), cost_record(by_layer(2), table)
    m = merge_cost_records([a, b])
    assert m["total"]["macs"] == a["total"]["macs"] + b["total"]["macs"] == 5700
    assert m["total"]["energy_pj"] == pytest.approx(a["total"]["energy_pj"] + b["total"]["energy_pj"])
    assert m["by_layer"]["fc1"]["forward"]["by_class"]["mul:int4*int4"]["count"] == 1800
    assert m["by_pass"]["optimizer"]["energy_pj"] == pytest.approx(2 * 70 * 13.8)
    assert merge_cost_records([a])["total"]["energy_pj"] == pytest.approx(a["total"]["energy_pj"])
    assert merge_cost_records([a])["by_layer"] == a["by_layer"]
    assert m["total"]["energy_pj"] == pytest.approx(cost_record(
        {l: {p: {op: by_layer(1)[l][p][op] + by_layer(2)[l][p][op] for op in c}
             for p, c in ps.items()} for l, ps in by_layer(1).items()}, table)["total"]["energy_pj"])
    with pytest.raises(ValueError, match="no cost records"):
        merge_cost_records([])
    with pytest.raises(ValueError, match="different tables"):
        merge_cost_records([a, cost_record(by_layer(), table.with_integer("aladdin"))])


# ---------------------------------------------------------------- the CLI

def write_run(d, table=None, with_cost=True, per_task_only=False, arith="hdqt", acc=(90.0, 80.0)):
    """A hand-made run folder: two tasks, each with a cost record, and the run's."""
    table = table or load_table()
    recs = [cost_record(by_layer(t + 1), table) for t in range(len(acc))]
    res = {"config": {"method": "icarl", "arith": arith, "bits": 4, "acc_bits": 8,
                      "audit_threshold": 1.0},
           "run": {"acc_limit": 8}, "complete": True,
           "tasks": [{"task": t, "cnn": a, "nme": None, "audit": {}} for t, a in enumerate(acc)],
           "summary": {"cnn": {"avg": sum(acc) / len(acc), "last": acc[-1], "forgetting": 10.0}}}
    if with_cost:
        for t, r in zip(res["tasks"], recs):
            t["cost"] = r
        if not per_task_only:
            res["cost"] = merge_cost_records(recs)
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(res))
    return d


def test_audit_cost(tmp_path, table):
    run = write_run(tmp_path / "r")
    r = invoke("audit", run, "--cost")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "cost, all tasks" and "45nm (integer ops: horowitz)" in lines[1]
    assert lines[2].split() == ["layer", "pass", "MACs", "energy", "uJ", "share", "%", "top",
                                "op", "classes"]
    rec = json.loads((run / "results.json").read_text())["cost"]
    fc1 = next(l for l in lines if l.startswith("fc1") and " fwd " in l).split()
    assert fc1[2] == "1,800"                                # 600 + 1200 over the two tasks
    assert float(fc1[3]) == pytest.approx(
        rec["by_layer"]["fc1"]["forward"]["energy_pj"] * 1e-6, rel=1e-3)
    assert "quant:scale" in l_of(lines, "fc1", "fwd")
    assert l_of(lines, "fc1", "opt").split()[2] == "0" and "opt:update 100%" in l_of(lines, "fc1", "opt")
    total = l_of(lines, "total", "all").split()
    assert total[2] == "5,700" and total[4] == "100.0"
    assert float(total[3]) == pytest.approx(rec["total"]["energy_pj"] * 1e-6, rel=1e-3)
    assert [l.split()[1] for l in lines if l.startswith("total ")] == [
        "fwd", "bwd-in", "bwd-w", "opt", "all"]
    shares = [float(l.split()[4]) for l in lines[4:] if l.split()[0] in ("fc1", "fc2")]
    assert sum(shares) == pytest.approx(100, abs=0.3)
    assert lines[-1].startswith("total: ") and "pJ per MAC" in lines[-1]
    # one task, and a run whose cost is only in its tasks
    r1 = invoke("audit", run, "--cost", "--task", "1")
    assert r1.exit_code == 0 and r1.stdout.startswith("cost of task 1")
    assert l_of(r1.stdout.splitlines(), "total", "all").split()[2] == "1,900"
    merged = invoke("audit", write_run(tmp_path / "t", per_task_only=True), "--cost")
    assert merged.exit_code == 0 and merged.stdout == r.stdout
    # --explain --cost: the legend of the cost table
    r = invoke("audit", "--cost", "--explain")
    assert r.exit_code == 0 and "columns of the cost table" in r.stdout and "share %" in r.stdout


def l_of(lines, layer, p):
    return next(l for l in lines if l.split()[:2] == [layer, p])


def test_audit_cost_errors_and_energy_table(tmp_path):
    run = write_run(tmp_path / "r")
    bare = write_run(tmp_path / "bare", with_cost=False)
    r = invoke("audit", bare, "--cost")
    assert r.exit_code == 2 and "has no cost record" in r.stderr and r.stderr.count("\n") == 1
    r = invoke("audit", bare)                                    # the overflow audit still works
    assert r.exit_code == 0 and "audit, all tasks" in r.stdout
    broken = write_run(tmp_path / "broken", with_cost=False)
    res = json.loads((broken / "results.json").read_text())
    res["cost"] = {"total": 1}
    (broken / "results.json").write_text(json.dumps(res))
    for args in (("audit", broken, "--cost"), ("compare", run, broken)):
        r = invoke(*args)
        assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.output
        assert "is not a cost record (no 'table' object)" in r.stderr
    bad = write_table(tmp_path, TEXT.replace('"8" = 0.03', '"8" = -1'))
    r = invoke("audit", run, "--cost", "--energy-table", bad)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "integer.horowitz.add.8" in r.stderr
    r = invoke("audit", run, "--energy-table", tmp_path / "nope.toml")
    assert r.exit_code == 2 and "energy table not found" in r.stderr
    # --energy-table (implies --cost) prices the stored counts with the other table
    mine = write_table(tmp_path, TEXT.replace('name = "45nm"', 'name = "cheap"')
                       .replace('"opt:update" = { "mul:fp32*fp32" = 3, "add:fp32" = 3 }',
                                '"opt:update" = 0'))
    base = invoke("audit", run, "--cost").stdout.splitlines()
    r = invoke("audit", run, "--energy-table", mine)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "priced with --energy-table" in lines[0] and "cheap" in lines[1]
    assert float(l_of(lines, "total", "opt").split()[3]) == 0
    assert l_of(lines, "fc1", "fwd").split()[:4] == l_of(base, "fc1", "fwd").split()[:4]
    assert float(l_of(lines, "total", "all").split()[3]) < float(l_of(base, "total", "all").split()[3])


def test_compare_energy_columns(tmp_path, table):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", table=table.with_integer("aladdin"), acc=(92.0, 84.0))
    c = write_run(tmp_path / "c", with_cost=False, arith="fp")
    r = invoke("compare", a, b, c)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    head = next(l for l in lines if l.startswith("run "))
    assert head.split()[-3:] == ["energy", "uJ", "pJ/MAC"]
    ra = json.loads((a / "results.json").read_text())["cost"]
    row_a = next(l for l in lines if l.startswith("a (")).split()
    assert float(row_a[-2]) == pytest.approx(ra["total"]["energy_pj"] * 1e-6, rel=1e-3)
    assert float(row_a[-1]) == pytest.approx(ra["total"]["energy_pj"] / ra["total"]["macs"],
                                             rel=1e-3)
    row_b = next(l for l in lines if l.startswith("b (")).split()
    assert float(row_b[-1]) > float(row_a[-1])                  # Aladdin's integer ops cost more
    assert next(l for l in lines if l.startswith("c (")).split()[-2:] == ["-", "-"]
    assert "'-': no cost record" in r.stdout and "different energy tables" in r.stdout
    # --energy-table prices every run with one table
    r = invoke("compare", a, b, "--energy-table", write_table(tmp_path, TEXT))
    assert r.exit_code == 0 and "different energy tables" not in r.stdout
    rows = [l.split() for l in r.stdout.splitlines() if l.startswith(("a (", "b ("))]
    assert rows[0][-1] == rows[1][-1]                           # same counts, same table
    # without any cost record: the table of before, no energy columns
    r = invoke("compare", c, write_run(tmp_path / "d", with_cost=False))
    assert r.exit_code == 0 and "energy" not in r.stdout
    r = invoke("compare", c, "--energy-table", tmp_path / "nope.toml")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1


def test_compare_a_sweep_folder_with_costs(tmp_path):
    out = tmp_path / "sweep"
    runs = {}
    for bits in (4, 8):
        for seed in (1, 2):
            key = f"k{bits}-{seed}"
            write_run(out / key, with_cost=bits == 4, acc=(90.0 + seed, 80.0))
            runs[key] = {"label": f"acc_bits={bits} seed={seed}", "status": "done"}
    (out / "sweep.json").write_text(json.dumps({"runs": runs}))
    r = invoke("compare", out)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["acc_bits", "seeds"]
    assert lines[0].split()[-3:] == ["energy", "uJ", "pJ/MAC"]
    four = lines[2].split()
    rec = json.loads((out / "k4-1" / "results.json").read_text())["cost"]
    assert four[0] == "4" and four[-6:-3] == [four[-6], "+-", "0"]  # mean +- std: seeds agree
    assert float(four[-6]) == pytest.approx(rec["total"]["energy_pj"] * 1e-6, rel=1e-3)
    assert lines[3].split()[0] == "8" and lines[3].split()[-2:] == ["-", "-"]
    assert costreport.energy_cells_pm([]) == ["-", "-"]


def test_fmt_energy():
    f = costreport.fmt_energy
    assert [f(1234567.0), f(12.345), f(0.0012346), f(0), f(None)] == [
        "1,234,567", "12.35", "0.001235", "0", "-"]
    assert not any("e" in f(10.0 ** k) for k in range(-9, 9))
    assert math.isclose(float(f(2.5e-7)), 2.5e-7)


def test_required_ops_are_in_the_packaged_table(table):
    for op in REQUIRED_OPS:
        assert table.energy_pj(op) > 0


def test_zigzag_table_adapter_and_the_extras_it_cannot_see():
    from intsim.cost.energy import load_table
    from intsim.cost.zigzag import extras_pj, table_from_energy
    t = load_table()
    z = table_from_energy(t)
    assert z["mac_pj"](8, 8, 32) == pytest.approx(t.int_mul_pj(8, 8) + t.int_add_pj(32))
    assert z["sram_pj_per_bit"] == pytest.approx(t.energy_pj("mem:read") / 8)
    counts = {"mul:int4*int4": 100, "add:int8": 100, "mem:read": 10, "had:fp32": 7,
              "quant:scale": 3, "rng:bits": 64}
    ex = extras_pj(counts, t)
    assert set(ex["by_class"]) == {"had:fp32", "quant:scale", "rng:bits"}
    assert ex["energy_pj"] == pytest.approx(7 * t.energy_pj("had:fp32") + 3 * t.energy_pj(
        "quant:scale") + 64 * t.energy_pj("rng:bits"))
