"""intsim.cost.zigzag: the ZigZag energy estimate (the `energy` extra)."""
import logging
import os
import subprocess
import sys
import tempfile
import time

import pytest

pytest.importorskip("zigzag", reason='ZigZag is the optional `energy` extra: pip install -e ".[energy]"')

from intsim.cost import zigzag as zz  # noqa: E402

P8 = {"weights": 8, "activations": 8, "outputs": 8, "partial_sums": 32}
P4 = {"weights": 4, "activations": 4, "outputs": 8, "partial_sums": 32}
# small enough for the full search in ~3 s (360 loop orders)
CONV = {"kind": "conv", "B": 2, "C": 16, "H": 16, "W": 16, "N": 16, "k": 3, "stride": 1, "padding": 1}
DENSE = {"kind": "dense", "M": 32, "K": 64, "N": 64}
KEYS = ("energy_pj", "latency_cycles", "mac_energy_pj", "memory_energy_pj")


def test_estimates_are_positive_and_grow_with_operand_width(tmp_path):
    for shape in (CONV, DENSE):
        r8 = zz.estimate_layer(shape, P8, cache_dir=tmp_path, search="fixed")
        r4 = zz.estimate_layer(shape, P4, cache_dir=tmp_path, search="fixed")
        assert all(r4[k] > 0 for k in KEYS) and r4["search"] == "fixed" and r4["orders"] > 0
        assert r8["energy_pj"] > r4["energy_pj"] and r8["mac_energy_pj"] > r4["mac_energy_pj"]
        assert r8["memory_energy_pj"] > r4["memory_energy_pj"]
        assert r8["energy_pj"] == pytest.approx(r8["mac_energy_pj"] + r8["memory_energy_pj"])
        assert r8["zigzag_version"] == zz.zigzag_version()
    # the MACs are priced by the table's mac_pj at the layer's widths
    assert r8["mac_energy_pj"] == pytest.approx(32 * 64 * 64 * zz.horowitz45_mac_pj(8, 8, 32))


def test_a_second_call_is_a_cache_hit_with_equal_numbers(tmp_path):
    first = zz.estimate_layer(CONV, P8, cache_dir=tmp_path, search="fixed")
    assert first["cached"] is False
    t0 = time.perf_counter()
    second = zz.estimate_layer(CONV, P8, cache_dir=tmp_path, search="fixed")
    assert time.perf_counter() - t0 < 0.5
    assert second["cached"] is True
    assert {k: v for k, v in second.items() if k != "cached"} == {k: v for k, v in first.items() if k != "cached"}
    # a different table is a different accelerator, hence a different entry
    table = {"dram_pj_per_bit": 2 * zz.DEFAULT_TABLE["dram_pj_per_bit"]}
    other = zz.estimate_layer(CONV, P8, table, cache_dir=tmp_path, search="fixed")
    assert other["cached"] is False and other["memory_energy_pj"] > first["memory_energy_pj"]
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_a_cache_hit_does_not_import_zigzag(tmp_path):
    zz.estimate_layer(DENSE, P8, cache_dir=tmp_path, search="fixed")
    code = ("import sys, json; from intsim.cost import zigzag as zz; "
            f"r = zz.estimate_layer({DENSE!r}, {P8!r}, cache_dir={str(tmp_path)!r}, search='fixed'); "
            "print(json.dumps([r['cached'], sorted(m for m in sys.modules if m.split('.')[0] == 'zigzag')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[true, []]"


def test_no_files_left_and_the_root_logger_unchanged(tmp_path, monkeypatch):
    work, temp, cache = tmp_path / "work", tmp_path / "temp", tmp_path / "cache"
    for d in (work, temp):
        d.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))   # where the dump folder goes
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        handlers, level = list(root.handlers), root.level
        zz_level = logging.getLogger("zigzag").level
        zz.estimate_layer(CONV, P8, cache_dir=cache, search="fixed", cache=False)
        assert root.handlers == handlers and root.level == level
        assert logging.getLogger("zigzag").level == zz_level
    finally:
        root.removeHandler(handler)
    assert os.listdir(work) == [] and os.listdir(temp) == []
    assert not cache.exists()          # cache=False writes nothing
    # what ZigZag's API does to the root logger (logging.basicConfig) is undone too
    handlers, level = list(root.handlers), root.level
    with zz._zigzag_quiet():
        root.addHandler(logging.StreamHandler())
        root.setLevel(logging.INFO)
    assert root.handlers == handlers and root.level == level


def test_the_bounded_search_is_close_to_the_full_one():
    assert zz.full_search_orders(CONV) == 360
    full = zz.estimate_layer(CONV, P8, search="full", cache=False)
    fixed = zz.estimate_layer(CONV, P8, search="fixed", cache=False)
    assert full["search"] == "full" and fixed["search"] == "fixed"
    assert fixed["orders"] < full["orders"]
    assert abs(fixed["energy_pj"] / full["energy_pj"] - 1) <= zz.FIXED_SEARCH_TOLERANCE
    # "auto" takes the full search when it fits the budget, else the bounded one
    assert zz._choose_search(zz._shape(CONV), zz._arch(None), "auto", 10.0) == "full"
    assert zz._choose_search(zz._shape(CONV), zz._arch(None), "auto", 0.01) == "fixed"


def test_estimate_model_sums_its_layers_and_computes_a_shape_once(tmp_path):
    layers = [dict(CONV, name="a"), dict(CONV, name="b"), DENSE]
    r = zz.estimate_model(layers, P8, cache_dir=tmp_path, search="fixed")
    assert [x.get("name") for x in r["layers"]] == ["a", "b", None]
    assert r["cached"] == 1 and r["searches"] == {"fixed": 3}
    for k in KEYS:
        assert r[k] == pytest.approx(sum(x[k] for x in r["layers"]))
    assert r["layers"][0]["energy_pj"] == r["layers"][1]["energy_pj"]
    assert zz.estimate_model(layers, P8, cache_dir=tmp_path, search="fixed")["cached"] == 3


def test_resnet32_layers_are_its_31_convs_and_classifier():
    layers = zz.resnet32_layers(batch=2, num_classes=10)
    assert len(layers) == 32 and sum(x["kind"] == "conv" for x in layers) == 31
    assert layers[-1] == {"name": "fc", "kind": "dense", "M": 2, "K": 64, "N": 10}
    assert [x["H"] for x in layers if x["kind"] == "conv" and x.get("stride") == 2] == [32, 16]


def test_bad_inputs_and_a_missing_zigzag_are_one_line_errors(monkeypatch):
    with pytest.raises(ValueError, match="partial_sums"):
        zz.estimate_layer(DENSE, {"weights": 8, "activations": 8, "outputs": 8})
    with pytest.raises(ValueError, match="kind"):
        zz.estimate_layer({"kind": "pool"}, P8)
    with pytest.raises(ValueError, match="unknown energy table keys"):
        zz.estimate_layer(DENSE, P8, {"sram": 1.0})
    monkeypatch.setattr(zz, "zigzag_version", lambda: None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[energy\]"'):
        zz.estimate_layer(DENSE, P8, cache=False)
