"""One-off: record the subject split and scaling the cached benchmark runs used.

Before the ``split`` / ``scale`` settings existed (issue 14), every HAR run
split the subjects "sorted" (the smallest user ids train) and min-max scaled
the features on the training subjects ("train-minmax"). The paper schedule
now defaults to the released code's split ("paper"), so this script writes
what the cached runs really did into each run folder that does not say it
yet: ``split = "sorted"`` and ``scale = "train-minmax"`` in results.json's
"config" and in config.toml (right after ``data``, where intsim writes them).
Nothing else in the folder changes; log.jsonl keeps the config it was written
with.

These values are RunConfig's field defaults, so the runs' keys
(intsim.app.jobs.run_key) and cache checks (jobs.settings) are unchanged; the
benchmark scripts ask for them with overrides {"split": "sorted", "scale":
"train-minmax"}.

Usage: python benchmarks/add_split_to_runs.py [RUNS_DIR] [--dry-run]
(default RUNS_DIR: benchmarks/results/runs; idempotent).
"""
import json
import os
import sys

from intsim.app import runfolder
from intsim.data.registry import DATASETS

HERE = os.path.dirname(os.path.abspath(__file__))
OLD = {"split": "sorted", "scale": "train-minmax"}


def _with_old(cfg: dict) -> dict:
    """cfg with the missing OLD settings inserted after "data" (RunConfig's order)."""
    out = {}
    for k, v in cfg.items():
        out[k] = v
        if k == "data":
            for kk, vv in OLD.items():
                if kk not in cfg:
                    out[kk] = vv
    for kk, vv in OLD.items():          # no "data" key: append
        out.setdefault(kk, vv)
    return out


def _toml_with_old(text: str) -> str | None:
    """config.toml text with the missing OLD lines after the ``data = ...`` line;
    None when nothing is missing."""
    lines = text.splitlines()
    keys = {ln.split("=", 1)[0].strip() for ln in lines if "=" in ln and not ln.startswith("#")}
    missing = [f'{k} = "{v}"' for k, v in OLD.items() if k not in keys]
    if not missing:
        return None
    at = next((i + 1 for i, ln in enumerate(lines) if ln.split("=", 1)[0].strip() == "data"),
              None)
    if at is None:                      # before the first table, or at the end
        at = next((i for i, ln in enumerate(lines) if ln.startswith("[")), len(lines))
    return "\n".join(lines[:at] + missing + lines[at:]) + "\n"


def _rewrite(path: str, write, content) -> None:
    """write(path, content), keeping the file's permission bits."""
    mode = os.stat(path).st_mode & 0o777
    write(path, content)
    os.chmod(path, mode)


def update_folder(folder: str, dry_run: bool = False) -> list[str]:
    """Add the OLD settings to one run folder; the names of the files changed."""
    changed = []
    res_path = os.path.join(folder, runfolder.RESULTS)
    try:
        with open(res_path) as f:
            res = json.load(f)
    except (OSError, ValueError):
        return changed
    cfg = res.get("config")
    if not isinstance(cfg, dict) or cfg.get("dataset") not in DATASETS or \
            DATASETS[cfg["dataset"]].kind != "har":
        return changed
    if any(k not in cfg for k in OLD):
        res["config"] = _with_old(cfg)
        if not dry_run:
            _rewrite(res_path, runfolder.atomic_write_json, res)
        changed.append(runfolder.RESULTS)
    toml_path = os.path.join(folder, runfolder.CONFIG)
    if os.path.isfile(toml_path):
        with open(toml_path) as f:
            new = _toml_with_old(f.read())
        if new is not None:
            if not dry_run:
                _rewrite(toml_path, runfolder.atomic_write_text, new)
            changed.append(runfolder.CONFIG)
    return changed


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    dry_run = "--dry-run" in argv
    argv = [a for a in argv if a != "--dry-run"]
    runs_dir = argv[0] if argv else os.path.join(HERE, "results", "runs")
    if not os.path.isdir(runs_dir):
        raise SystemExit(f"add_split_to_runs: {runs_dir} is not a folder")
    folders = sorted(d for d in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, d)))
    n = 0
    for d in folders:
        changed = update_folder(os.path.join(runs_dir, d), dry_run)
        if changed:
            n += 1
            print(f"{d}: {', '.join(changed)}{' (dry run)' if dry_run else ''}")
    print(f"{n} of {len(folders)} run folders {'would be ' if dry_run else ''}updated "
          f"in {runs_dir}")


if __name__ == "__main__":
    main()
