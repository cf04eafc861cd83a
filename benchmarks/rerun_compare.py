"""Re-run stored run folders with the current code and compare every field.

    python benchmarks/rerun_compare.py RUN_FOLDER [RUN_FOLDER ...] [--ignore-audit-saturated]
        [--threads N]

Each run folder's config.toml is re-run (intsim.run, one thread or --threads N, a
scratch folder; an integer datapath's bits do not depend on the thread count); the new results.json is compared with the stored one leaf by leaf
(timings, versions, the thread counts and the data's file origin are not
results and are skipped). Prints, per run, the number of fields compared and
every field that differs. Records converted from an older compact format
(their results.json has run.migrated_from) kept 10 significant digits: a
float that agrees to 1e-9 (relative) counts as equal and is reported as
such. --keep DIR: keep the new run folders there. --ignore-audit-saturated:
also report, separately, differences that are only audit "saturated" counts
(for a change that should move counts only, e.g. how wrap counts).
The guide's rule: after a change to kernels or random streams, re-run cached
full-protocol runs and compare every field (docs/results.md).
"""
import json
import os
import sys
import tempfile
from pathlib import Path

import intsim
from intsim.app import config as cfgmod

SKIP = ("timings", "versions", "run.threads", "run.data_info.origin", "config.threads",
        "run.injected_dataset")


def flatten(d, prefix=""):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = d
    return out


def skipped(key):
    return any(key == s or key.startswith(s + ".") or key.startswith(s + "[") for s in SKIP)


def _close(x, y):
    return (isinstance(x, float) and isinstance(y, float)
            and abs(x - y) <= 1e-9 * max(abs(x), abs(y)))


def compare(stored, new):
    """(fields compared, [(key, stored, new) differing], fields equal only to 1e-9)."""
    a, b = flatten(stored), flatten(new)
    keys = sorted(k for k in set(a) | set(b) if not skipped(k))
    diff, close = [], 0
    for k in keys:
        x, y = a.get(k, "<missing>"), b.get(k, "<missing>")
        if x == y:
            continue
        if _close(x, y):
            close += 1
        else:
            diff.append((k, x, y))
    return len(keys), diff, close


def _top(key: str) -> str:
    """The field a flattened key belongs to, without task indices and subkeys
    (``tasks[2].cost.total.macs`` -> ``tasks[].cost``)."""
    import re
    parts = re.sub(r"\[\d+\]", "[]", key).split(".")
    return ".".join(parts[:2])


def main(argv):
    loose = "--ignore-audit-saturated" in argv
    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 1
    skip = {argv.index(o) + 1 for o in ("--keep", "--threads") if o in argv}
    folders = [Path(x) for i, x in enumerate(argv) if not x.startswith("--") and i not in skip]
    for folder in folders:
        stored = json.loads((folder / "results.json").read_text())
        was = (stored.get("versions") or {}).get("openblas_coretype", "<not recorded>")
        now = os.environ.get("OPENBLAS_CORETYPE")
        if was != now:
            print(f"{folder.name}: note: recorded with OPENBLAS_CORETYPE={was}, re-run with "
                  f"{now}; float32 products (FP, LUQ, FP8, FP134) may round differently")
        cfg = cfgmod.resolve(folder / "config.toml", {"threads": threads})
        with tempfile.TemporaryDirectory() as tmp:
            new = intsim.run(cfg, (keep or Path(tmp)) / folder.name)
        n, diff, close = compare(stored, new)
        sat = [d for d in diff if d[0].endswith(".saturated")] if loose else []
        meta = [d for d in diff if d[0].startswith(("run.", "config.")) or
                d[0].endswith(".levels_used") and d[1] is None]
        # fields the stored record does not have at all (results.json fields its
        # intsim did not write)
        added = [d for d in diff if d not in meta and d[1] == "<missing>"]
        rest = [d for d in diff if d not in sat and d not in meta and d not in added]
        print(f"{folder.name}: {n} fields compared, {len(rest)} results differ, {close} equal "
              f"to 1e-9 only (10-digit records)"
              + (f", {len(sat)} audit 'saturated' counts differ" if loose else "")
              + f"; {len(meta)} configuration/metadata fields differ (new or renamed "
              f"fields, level fractions the old record lacks); {len(added)} fields are new "
              f"(absent from the stored record: "
              f"{', '.join(sorted({_top(k) for k, _, _ in added})) or 'none'})")
        for k, x, y in rest:
            print(f"  {k}: stored {x!r} new {y!r}")
        for k, x, y in meta:
            print(f"  (meta) {k}: stored {x!r} new {y!r}")
        if loose and sat:
            k, x, y = sat[0]
            print(f"  e.g. {k}: stored {x} new {y}")


if __name__ == "__main__":
    main(sys.argv[1:])
