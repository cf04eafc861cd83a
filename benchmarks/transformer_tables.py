"""A transformer under HDQT: the transformer study's tables (accuracy, and which products saturate).

Writes the tables of the runs of a SPEC; `intsim sweep` runs them:

    intsim sweep benchmarks/specs/transformer.toml
    python benchmarks/transformer_tables.py --spec benchmarks/specs/transformer.toml

`make transformer` does both. Two tables (seeds pooled, mean +- sample std):
- accuracy: a row per setting (single-task: every class in one task; or the
  CIL method) and arithmetic: last and average incremental accuracy (CNN;
  iCaRL's NME beside it), the gaps to FP paired by seed, and the saturated
  accumulator results of all passes;
- saturation by product: for each integer run group, the share of
  accumulator results that saturated in each kind of product (the patch
  embedding, attention's qkv / QK^T / AV / output projection, the MLP's fc1 /
  fc2, the classifier), pooled over the blocks, tasks and seeds, forward and
  backward (input and weight gradients together).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import load_grid, md_table  # noqa: E402
from reproduce_hapt import ARITH_NOTE, SAT_NOTE, arith_name  # noqa: E402

#: the kinds of product, by the last part of a site's name in the audit
PRODUCT_KINDS = ("embed", "qkv", "qk", "av", "proj", "fc1", "fc2", "classifier")


def run_name(cfg) -> str:
    """'FP', 'HDQT 4/8', 'HDQT 4/8, attention fp32' (attn_products none), ..."""
    name = arith_name(cfg)
    if getattr(cfg, "attn_products", "file") != "file":
        name += (", attention fp32" if cfg.attn_products == "none"
                 else f", attention {cfg.attn_products}")
    return name


def setting_name(cfg) -> str:
    """'single-task' for the SPEC's fine-tuning runs (every class in the first task),
    else the CIL method."""
    return "single-task" if cfg.method == "finetune" else cfg.method


def product_kind(site: str) -> str | None:
    """The kind of a site (``backbone.encoder1.attn.mhsa.qk`` -> ``qk``), None if unknown."""
    last = site.rsplit(".", 1)[-1]
    return last if last in PRODUCT_KINDS else None


def saturation_by_kind(results: dict) -> dict:
    """{(kind, 'fwd'|'bwd'): [saturated, tiles]} of one run's audit, all tasks."""
    out: dict = {}
    for rec in results["tasks"]:
        for site, passes in (rec.get("audit") or {}).items():
            kind = product_kind(site)
            if kind is None:
                continue
            for p, d in passes.items():
                key = (kind, "fwd" if p == "forward" else "bwd")
                acc = out.setdefault(key, [0, 0])
                acc[0] += int(d.get("saturated", 0))
                acc[1] += int(d.get("tiles", 0))
    return out


def build_rows(grid):
    """The accuracy table's rows, and the groups {(setting, run name): {seed: run}}."""
    groups = grid.groups(lambda c: (setting_name(c), run_name(c)))
    rows = []
    for (setting, name), g in groups.items():
        fp = groups.get((setting, "FP"))
        quant = name != "FP" and fp is not None
        nme = grid.fmt(g, "nme_last") if setting == "icarl" else "-"
        rows.append([setting, name, grid.fmt(g, "cnn_last"), grid.fmt(g, "cnn_avg"), nme,
                     grid.diff(g, fp, "cnn_last") if quant else "-",
                     grid.diff(g, fp, "cnn_avg") if quant else "-",
                     "-" if name == "FP" or name.startswith("FP8") else grid.fmt(g, "sat_pct", 3),
                     grid.done(g)])
    return rows, groups


def saturation_rows(grid, groups):
    """Rows of the saturation-by-product table: one per integer run group."""
    rows = []
    for (setting, name), g in groups.items():
        if not name.startswith("HDQT"):
            continue
        tot: dict = {}
        for r in g.values():
            res = grid.results.get(r.key)
            if res is None:
                continue
            for k, (s, t) in saturation_by_kind(res).items():
                acc = tot.setdefault(k, [0, 0])
                acc[0] += s
                acc[1] += t
        cells = []
        for kind in PRODUCT_KINDS:
            for p in ("fwd", "bwd"):
                s, t = tot.get((kind, p), (0, 0))
                cells.append(f"{100.0 * s / t:.2f}" if t else "-")
        rows.append([setting, name] + cells)
    return rows


def main(argv=None):
    grid = load_grid("transformer_tables", __doc__, "transformer", argv)
    header = ["setting", "arith", "last %", "avg inc %", "NME last %", "last - FP",
              "avg - FP", "sat %", "seeds"]
    rows, groups = build_rows(grid)
    sat_header = ["setting", "arith"] + [f"{k} {p}" for k in PRODUCT_KINDS for p in ("fwd", "bwd")]
    sat_rows = saturation_rows(grid, groups)
    notes = [
        grid.mode_note(),
        *grid.split_notes(),
        "Raw windows are min-max scaled per channel on the training subjects "
        "(docs/data.md).",
        "single-task: every class in one task (fine-tuning, tested once); icarl: 2 classes, then "
        "+2 a task. last = accuracy after the last task; avg inc = mean over tasks of the "
        "accuracy on the classes seen (the same as last for one task). Gaps paired by seed.",
        "attention fp32: HDQT 4/8 with Q K^T and A V summed in float32 (attn_products none); the "
        "other rows of HDQT put both through the datapath (the model file's quantize_products).",
        ARITH_NOTE, SAT_NOTE,
        "Saturation by product (% of accumulator results of that kind of product that "
        "saturated, all blocks, tasks and seeds; fwd: forward, bwd: backward input and "
        "weight):\n\n" + md_table(sat_header, sat_rows),
        grid.compute_note(" (one core per run)")]
    grid.write("A transformer encoder on raw HAPT windows: FP, HDQT 4/8, FP8", header, rows,
               notes)


if __name__ == "__main__":
    main()
