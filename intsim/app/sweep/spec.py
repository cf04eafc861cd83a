"""A SPEC file -> the runs of a sweep: parsing, validation, naming (docs/sweeps.md).

:func:`load_spec` reads a SPEC (TOML), expands ``[grid]`` (the product of its
lists, the last key varying fastest) and ``[[runs]]``, resolves every run like
``intsim train --config`` (threads default to 1; arithmetic settings the run's
arithmetic does not take are dropped) and names it :func:`intsim.app.jobs.run_key`
of its completed settings. Any problem is one :class:`SpecError` line naming the
file, the key and, for a value, the run.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass
from typing import Any, Mapping

from intsim.app import jobs as _jobs
from intsim.app.config import ARITH_SETTINGS, ConfigError, RunConfig, load_toml

SPEC_KEYS = ("description", "out", "base", "grid", "runs")
_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


class SpecError(ConfigError):
    """A SPEC file is malformed or one of its runs has bad settings (one-line message)."""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    key: its folder name (:func:`intsim.app.jobs.run_key` of ``resolved``).
    config: the resolved :class:`RunConfig` it runs (as ``intsim train`` would).
    resolved: ``config`` with the schedule's values filled in (its config.toml).
    label: the grid point, e.g. ``method=icarl seed=1 arith=fp``.
    """
    key: str
    config: RunConfig
    resolved: RunConfig
    label: str

    def settings(self) -> dict:
        """The settings that differ from RunConfig's defaults (what the key hashes)."""
        return _jobs.settings(self.resolved.to_dict())


@dataclass(frozen=True)
class Spec:
    """A parsed SPEC: its runs (duplicates removed, in order) and default output folder."""
    source: str
    runs: tuple
    out: str | None = None
    description: str = ""
    duplicates: int = 0


def _norm(d: Mapping) -> dict:
    return {str(k).replace("-", "_"): v for k, v in d.items()}


def _fmt(v: Any) -> str:
    if isinstance(v, Mapping):
        return ",".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt(x) for x in v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def _check_settings(table: Mapping, where: str) -> dict:
    """Setting names known (values are checked when each run resolves)."""
    out = _norm(table)
    for k, v in out.items():
        if k not in _FIELDS:
            raise SpecError(f"{where}: unknown setting {k!r}")
        if isinstance(v, Mapping) and k != "arith_options":
            raise SpecError(f"{where}: {k} must be a value, not a table")
    return out


def _axes(grid: Mapping, where: str) -> list:
    """[(name, [(label, {settings}), ...]), ...] of a [grid] table."""
    if not isinstance(grid, Mapping):
        raise SpecError(f"{where} must be a table of key = [values]")
    axes = []
    for name, values in _norm(grid).items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}.{name} must be a non-empty list of values, got {values!r}")
        tables = [isinstance(v, Mapping) for v in values]
        if name == "arith_options":
            if not all(tables):
                raise SpecError(f"{where}.arith_options must be a list of tables")
            choices = [(f"arith_options={{{_fmt(v)}}}", {"arith_options": dict(v)})
                       for v in values]
        elif all(tables):               # each choice sets several settings
            choices = [(_fmt(v), _check_settings(v, f"{where}.{name}")) for v in values]
        elif any(tables):
            raise SpecError(f"{where}.{name} mixes tables and values")
        elif name not in _FIELDS:
            raise SpecError(f"{where}: unknown setting {name!r} (a grid axis that is not a "
                            f"setting needs tables of settings as its values)")
        else:
            choices = [(f"{name}={_fmt(v)}", {name: v}) for v in values]
        axes.append((name, choices))
    return axes


def _points(axes: list):
    """(label, settings) of every grid point, the last axis varying fastest."""
    if not axes:
        yield "", {}
        return
    for combo in itertools.product(*[c for _, c in axes]):
        label, values = [], {}
        for clabel, settings in combo:
            label.append(clabel)
            values.update(settings)
        yield " ".join(label), values


def _short_label(cfg: RunConfig) -> str:
    """The arith part of a folder name, as :func:`intsim.app.jobs.arith_label` gives it."""
    from intsim.arith import ARITHS
    if "bits" not in ARITHS[cfg.arith].config_fields:
        return cfg.arith
    acc = cfg.acc_bits if "acc_bits" in ARITHS[cfg.arith].config_fields else None
    return f"{cfg.arith}{cfg.bits}-{acc if acc is not None else 'w'}"


def make_run(values: Mapping[str, Any], label: str = "", base_dir: str | None = None) -> SweepRun:
    """A :class:`SweepRun` from flat settings (ConfigError naming a bad one)."""
    from intsim.app.build import build_arith, cil_config, complete_config
    from intsim.app.config import resolve
    from intsim.arith import ARITHS
    values = _norm(values)
    values.setdefault("threads", 1)
    kind = str(values.get("arith", _FIELDS["arith"].default)).lower()
    if kind in ARITHS:              # settings its arithmetic does not take: the defaults
        for k in ARITH_SETTINGS:
            if k not in ARITHS[kind].config_fields:
                values.pop(k, None)
    data = values.get("data")
    if isinstance(data, str) and data.lower() != "none" and base_dir and not os.path.isabs(data):
        values["data"] = os.path.normpath(os.path.join(base_dir, os.path.expanduser(data)))
    cfg = resolve(None, values)
    build_arith(cfg)
    resolved = complete_config(cfg, cil_config(cfg))
    return SweepRun(_jobs.run_key(resolved, _short_label(resolved)), cfg, resolved, label)


def parse_spec(raw: Mapping, source: str = "spec", base_dir: str | None = None) -> Spec:
    """A :class:`Spec` from a SPEC's TOML tables; SpecError (one line) on any problem."""
    raw = _norm(raw)
    bad = [k for k in raw if k not in SPEC_KEYS]
    if bad:
        raise SpecError(f"{source}: unknown key {bad[0]!r} (a SPEC has {', '.join(SPEC_KEYS)}; "
                        f"run settings go in [base], [grid] or [[runs]])")
    base = raw.get("base", {})
    if not isinstance(base, Mapping):
        raise SpecError(f"{source}: base must be a table [base]")
    base = _check_settings(base, f"{source} [base]")
    axes = _axes(raw.get("grid", {}), f"{source} [grid]")
    extra = raw.get("runs", [])
    if not isinstance(extra, list) or not all(isinstance(e, Mapping) for e in extra):
        raise SpecError(f"{source}: runs must be an array of tables [[runs]]")
    for name in ("description", "out"):
        if name in raw and not isinstance(raw[name], str):
            raise SpecError(f"{source}: {name} must be a string")

    points = [(label, {**base, **values}) for label, values in _points(axes)]
    for i, entry in enumerate(extra, 1):
        entry = _norm(entry)
        sub = entry.pop("grid", {})
        entry = _check_settings(entry, f"{source} [[runs]] #{i}")
        name = " ".join(f"{k}={_fmt(v)}" for k, v in entry.items())
        for label, values in _points(_axes(sub, f"{source} [[runs]] #{i} grid")):
            points.append(((f"{name} {label}").strip(), {**base, **entry, **values}))
    runs, seen = [], set()
    for label, values in points:
        try:
            r = make_run(values, label, base_dir)
        except ConfigError as e:
            raise SpecError(f"{source}: run {label or '(base)'}: {e}") from None
        if r.key not in seen:
            seen.add(r.key)
            runs.append(r)
    out = raw.get("out")
    if out is not None and base_dir and not os.path.isabs(out):
        out = os.path.normpath(os.path.join(base_dir, os.path.expanduser(out)))
    return Spec(source, tuple(runs), out, raw.get("description", ""), len(points) - len(runs))


def load_spec(path) -> Spec:
    """Read and expand a SPEC file (SpecError, one line, naming the file and the bad key)."""
    path = os.fspath(path)
    raw = load_toml(path, "spec file", SpecError)
    return parse_spec(raw, path, os.path.dirname(os.path.abspath(path)))
