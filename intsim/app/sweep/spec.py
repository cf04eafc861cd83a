"""A SPEC file -> the runs of a sweep: parsing, validation, naming, overlays
(docs/sweeps.md).

:func:`load_spec` reads a SPEC (TOML), expands ``[grid]`` (the product of its
lists, the last key varying fastest) and ``[[runs]]``, applies an
:class:`Overlay` (settings that win over the SPEC's in every run, and a cut to
the SPEC's first seeds), resolves every run like ``intsim train --config``
(threads default to 1; arithmetic settings the run's arithmetic does not take
are dropped) and names it :func:`intsim.app.jobs.run_key` of its completed
settings. Any problem is one :class:`SpecError` line naming the file (or the
command-line option), the key and, for a value, the run.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from intsim.app import jobs as _jobs
from intsim.app.build import build_arith, cil_config, complete_config
from intsim.app.config import (ARITH_SETTINGS, ConfigError, RunConfig, datapath_label, load_toml,
                               resolve)
from intsim.datapath import PRESETS as ARITHS
from intsim.models.registry import is_model_file

SPEC_KEYS = ("description", "out", "base", "grid", "runs")
OVERLAY_KEYS = ("description", "set", "seeds")
_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def _is_setting(name: str) -> bool:
    """A RunConfig field, or one setting of the datapath (``datapath.PART.FIELD``)."""
    return name in _FIELDS or (name.startswith("datapath.") and len(name) > len("datapath."))


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
class Overlay:
    """Changes a sweep applies to every run of a SPEC (docs/sweeps.md, "Overlays").

    settings: set in every run after ``[grid]`` and ``[[runs]]`` expand, so they win
    over the SPEC's values (runs that become identical are run once).
    seeds: keep only the runs of the SPEC's first ``seeds`` seeds, in the order the
    seeds first appear in the SPEC's runs (None: all).
    names: the names of the overlay files applied (their file names without .toml).
    """
    settings: Mapping = field(default_factory=dict)
    seeds: int | None = None
    names: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.settings) or self.seeds is not None

    def then(self, other: "Overlay") -> "Overlay":
        """This overlay, then ``other`` (whose settings and seeds win)."""
        return Overlay({**self.settings, **other.settings},
                       other.seeds if other.seeds is not None else self.seeds,
                       self.names + other.names)


@dataclass(frozen=True)
class Spec:
    """A parsed SPEC: its runs (duplicates removed, in order) and default output folder."""
    source: str
    runs: tuple
    out: str | None = None
    description: str = ""
    duplicates: int = 0
    overlay: Overlay = field(default_factory=Overlay)

    @property
    def name(self) -> str:
        """The SPEC file's name without its folder and .toml."""
        return os.path.splitext(os.path.basename(self.source))[0]

    def out_dir(self, out=None) -> str:
        """The sweep's folder: ``out`` if given, else the SPEC's ``out``, else
        ``sweeps/<SPEC name>`` (relative to the working directory)."""
        if out is not None:
            return os.fspath(out)
        return self.out or os.path.join("sweeps", self.name)

    def seeds(self) -> list:
        """The seeds of the runs, in the order they first appear."""
        return list(dict.fromkeys(r.config.seed for r in self.runs))


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
        if not _is_setting(k):
            raise SpecError(f"{where}: unknown setting {k!r}")
        if isinstance(v, Mapping) and k not in ("arith_options", "datapath"):
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
        elif not _is_setting(name):
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
    """The arith part of a folder name: the kind (``fp``, ``fp134``), or kind, bits and
    accumulator bits (``hdqt4-8``; ``w`` for no limit: ``luq4-w``)."""
    if cfg.datapath is not None:
        return datapath_label(cfg)
    if "bits" not in ARITHS[cfg.arith].config_fields:
        return cfg.arith
    acc = cfg.acc_bits if "acc_bits" in ARITHS[cfg.arith].config_fields else None
    return f"{cfg.arith}{cfg.bits}-{acc if acc is not None else 'w'}"


def make_run(values: Mapping[str, Any], label: str = "", base_dir: str | None = None) -> SweepRun:
    """A :class:`SweepRun` from flat settings (ConfigError naming a bad one)."""
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
    model = values.get("model")
    if is_model_file(model) and base_dir and not os.path.isabs(model):
        values["model"] = os.path.normpath(os.path.join(base_dir, os.path.expanduser(model)))
    cfg = resolve(None, values)
    build_arith(cfg)
    resolved = complete_config(cfg, cil_config(cfg))
    return SweepRun(_jobs.run_key(resolved, _short_label(resolved)), cfg, resolved, label)


def _relabel(label: str, settings: Mapping) -> str:
    """A grid point's label with the values an overlay set: a word of the label that
    names a setting gets the value set (``seed=1`` -> ``seed=2``), the other settings
    set are appended (``... epochs=10``), so runs that differ only by an overlay have
    different labels (``intsim compare DIR`` groups runs by label)."""
    if not settings:
        return label
    words, seen = [], set()
    for w in label.split():
        if "{" in w:                    # arith_options={...}: one value
            k = w.partition("=")[0]
            seen.add(k)
            words.append(f"{k}={{{_fmt(settings[k])}}}" if k in settings else w)
            continue
        parts = []
        for p in w.split(","):
            k, sep, _ = p.partition("=")
            seen.add(k)
            parts.append(f"{k}={_fmt(settings[k])}" if sep and k in settings else p)
        words.append(",".join(parts))
    for k, v in settings.items():
        if k not in seen:
            words.append(f"arith_options={{{_fmt(v)}}}" if k == "arith_options" else
                         f"{k}={_fmt(v)}")
    return " ".join(words)


def parse_spec(raw: Mapping, source: str = "spec", base_dir: str | None = None,
               overlay: Overlay | None = None) -> Spec:
    """A :class:`Spec` from a SPEC's TOML tables, with ``overlay`` applied; SpecError
    (one line) on any problem."""
    overlay = Overlay() if overlay is None else overlay
    raw = _norm(raw)
    bad = [k for k in raw if k not in SPEC_KEYS]
    if bad:
        hint = ("; an overlay file goes after --overlay" if {"set", "seeds"} & set(bad) else "")
        raise SpecError(f"{source}: unknown key {bad[0]!r} (a SPEC has {', '.join(SPEC_KEYS)}; "
                        f"run settings go in [base], [grid] or [[runs]]{hint})")
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
        label = _relabel(label, overlay.settings)
        try:
            r = make_run({**values, **overlay.settings}, label, base_dir)
        except ConfigError as e:
            raise SpecError(f"{source}: run {label or '(base)'}: {e}") from None
        if r.key not in seen:
            seen.add(r.key)
            runs.append(r)
    n_unique = len(runs)
    if overlay.seeds is not None:
        seeds = list(dict.fromkeys(r.config.seed for r in runs))
        if overlay.seeds > len(seeds):
            raise SpecError(f"{source} has {len(seeds)} seed(s) "
                            f"({', '.join(map(str, seeds))}); cannot keep its first "
                            f"{overlay.seeds}")
        keep = set(seeds[:overlay.seeds])
        runs = [r for r in runs if r.config.seed in keep]
    out = raw.get("out")
    if out is not None and base_dir and not os.path.isabs(out):
        out = os.path.normpath(os.path.join(base_dir, os.path.expanduser(out)))
    return Spec(source, tuple(runs), out, raw.get("description", ""),
                len(points) - n_unique, overlay)


def load_spec(path, overlay: Overlay | None = None) -> Spec:
    """Read and expand a SPEC file with ``overlay`` applied (SpecError, one line,
    naming the file and the bad key)."""
    path = os.fspath(path)
    raw = load_toml(path, "spec file", SpecError)
    return parse_spec(raw, path, os.path.dirname(os.path.abspath(path)), overlay)


# ---------------------------------------------------------------- overlays

def parse_overlay(raw: Mapping, source: str = "overlay", name: str | None = None) -> Overlay:
    """An :class:`Overlay` from an overlay file's TOML tables (SpecError, one line)."""
    raw = _norm(raw)
    bad = [k for k in raw if k not in OVERLAY_KEYS]
    if bad:
        raise SpecError(f"{source}: unknown key {bad[0]!r} (an overlay has "
                        f"{', '.join(OVERLAY_KEYS)}; settings go in [set])")
    if "description" in raw and not isinstance(raw["description"], str):
        raise SpecError(f"{source}: description must be a string")
    sets = raw.get("set", {})
    if not isinstance(sets, Mapping):
        raise SpecError(f"{source}: set must be a table [set]")
    sets = _check_settings(sets, f"{source} [set]")
    seeds = raw.get("seeds")
    if seeds is not None:
        seeds = _check_seeds(seeds, f"{source}: seeds")
    return Overlay(sets, seeds, (name,) if name else ())


def load_overlay(path) -> Overlay:
    """Read an overlay file (TOML: ``seeds = N`` and a ``[set]`` table)."""
    path = os.fspath(path)
    raw = load_toml(path, "overlay file", SpecError)
    return parse_overlay(raw, path, os.path.splitext(os.path.basename(path))[0])


def _check_seeds(n, where: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpecError(f"{where} must be a whole number >= 1 (the SPEC's first N seeds), "
                        f"got {n!r}")
    return n


def parse_set(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set`` -> (key, value): VALUE is read as a TOML value
    (``10``, ``false``, ``[16, 16]``, ``"x"``), else taken as a string (``wrap``, ``none``)."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise SpecError(f"--set {text}: expected KEY=VALUE, e.g. --set epochs=10")
    if not _is_setting(key):
        raise SpecError(f"--set {text}: unknown setting {key!r}")
    value = value.strip()
    try:
        v = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        v = value
    if isinstance(v, Mapping) and key not in ("arith_options", "datapath"):
        raise SpecError(f"--set {text}: {key} must be a value, not a table")
    return key, v


def make_overlay(files=(), sets=(), seeds: int | None = None) -> Overlay:
    """The overlay of ``--overlay FILE`` (each, in order), then ``--set KEY=VALUE``
    (each) and ``--seeds N``: later ones win. SpecError (one line) on bad input."""
    ov = Overlay()
    for f in files:
        ov = ov.then(load_overlay(f))
    if sets:
        ov = ov.then(Overlay(dict(parse_set(s) for s in sets)))
    if seeds is not None:
        ov = ov.then(Overlay(seeds=_check_seeds(seeds, "--seeds")))
    return ov
