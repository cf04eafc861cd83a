"""The overflow audit table: per layer and pass, how the accumulator fared.

Input is what ``model.audit()`` returns, ``{layer: {pass: Audit-like}}``
(pass in forward / backward_input / backward_weight), or the plain-dict form
stored in results.json. An Audit-like object has ``tiles`` (number of
accumulator tiles computed), ``saturated`` (tiles whose partial sum left the
accumulator range), ``max_abs`` (largest |partial sum| seen, in integer
units) and optionally ``levels_used`` (fraction of quantizer levels that
occurred, 0..1). Every function here works on the plain-dict form that
:func:`audit_to_dict` produces.

A float datapath (FP8, FP134: intsim.arith.lptorch.FloatPassAudit) also
has ``flushed`` (nonzero values rounded to zero); its ``tiles`` are the values
a pass quantized, ``saturated`` those above the format's max and ``max_abs``
the largest |value / scale| in format units. Entries without ``flushed``
(the integer arithmetics) keep exactly their fields and table.

A datapath with a float or integer accumulator part on formatted operands
(intsim.datapath.formats.AccPassAudit) adds the accumulator's counts:
``acc_adds`` (rounded additions), ``swamped`` (additions that lost part or
all of the addend), ``absorbed`` (all of it), ``acc_overflows`` (sums beyond
the accumulator format's max), ``acc_tiles`` / ``acc_saturated`` (integer
accumulator tiles and those clipped) and ``acc_max_abs``.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping
from intsim.kernels.accumulator import acc_range  # noqa: F401  (re-exported)

PASSES = ("forward", "backward_input", "backward_weight")
PASS_SHORT = {"forward": "fwd", "backward_input": "bwd-in", "backward_weight": "bwd-w"}
_FIELDS = ("tiles", "saturated", "max_abs", "levels_used")
#: accumulator counts of a formatted datapath (summed over tasks; acc_max_abs: max)
ACC_FIELDS = ("acc_adds", "swamped", "absorbed", "acc_overflows", "acc_tiles", "acc_saturated")


def _get(obj: Any, name: str):
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _entry(obj: Any) -> dict:
    """One Audit-like object -> {"tiles", "saturated", "max_abs", "levels_used"}."""
    if not isinstance(obj, Mapping) and hasattr(obj, "as_dict"):
        d = dict(obj.as_dict())
        for k in _FIELDS:           # attributes not in as_dict (e.g. levels)
            if k not in d and getattr(obj, k, None) is not None:
                d[k] = getattr(obj, k)
        obj = d
    lv = _get(obj, "levels_used")
    if lv is None:
        lv = _get(obj, "levels")
    mx = _get(obj, "max_abs")
    out = {"tiles": int(_get(obj, "tiles") or 0),
           "saturated": int(_get(obj, "saturated") or 0),
           "max_abs": float(mx) if mx is not None else 0.0,
           "levels_used": float(lv) if lv is not None else None}
    fl = _get(obj, "flushed")
    if fl is not None:              # a float datapath's values flushed to zero
        out["flushed"] = int(fl)
    if _get(obj, "acc_adds") is not None:
        for k in ACC_FIELDS:
            out[k] = int(_get(obj, k) or 0)
        out["acc_max_abs"] = float(_get(obj, "acc_max_abs") or 0.0)
    return out


def audit_to_dict(audit: Mapping[str, Mapping[str, Any]] | None) -> dict:
    """``model.audit()`` (or its dict form) -> plain JSON-able nested dict."""
    out: dict = {}
    for layer, passes in (audit or {}).items():
        out[str(layer)] = {str(p): _entry(a) for p, a in passes.items()}
    return out


def merge_audits(audits: Iterable[Mapping]) -> dict:
    """Sum several plain audits (e.g. all tasks): tiles/saturated add, max_abs max,
    levels_used is the tile-weighted mean."""
    out: dict = {}
    for aud in audits:
        for layer, passes in audit_to_dict(aud).items():
            lo = out.setdefault(layer, {})
            for p, e in passes.items():
                cur = lo.get(p)
                if cur is None:
                    lo[p] = dict(e)
                    continue
                t0, t1 = cur["tiles"], e["tiles"]
                if cur["levels_used"] is None or e["levels_used"] is None:
                    lv = cur["levels_used"] if e["levels_used"] is None else e["levels_used"]
                else:
                    lv = ((cur["levels_used"] * t0 + e["levels_used"] * t1) / (t0 + t1)
                          if t0 + t1 else max(cur["levels_used"], e["levels_used"]))
                lo[p] = {"tiles": t0 + t1, "saturated": cur["saturated"] + e["saturated"],
                         "max_abs": max(cur["max_abs"], e["max_abs"]), "levels_used": lv}
                if "flushed" in cur or "flushed" in e:
                    lo[p]["flushed"] = cur.get("flushed", 0) + e.get("flushed", 0)
                if "acc_adds" in cur or "acc_adds" in e:
                    for k in ACC_FIELDS:
                        lo[p][k] = cur.get(k, 0) + e.get(k, 0)
                    lo[p]["acc_max_abs"] = max(cur.get("acc_max_abs", 0.0),
                                               e.get("acc_max_abs", 0.0))
    return out


def audit_rows(audit: Mapping, acc_bits: int | None, threshold: float = 1.0) -> list[dict]:
    """Flat rows: layer, pass, tiles, saturated, sat_pct, max_abs, range,
    max_over_range, levels_used, flagged (sat_pct > threshold %); float-datapath
    entries add flushed and flushed_pct."""
    rng = acc_range(acc_bits)
    rows = []
    for layer, passes in audit_to_dict(audit).items():
        order = [p for p in PASSES if p in passes] + [p for p in passes if p not in PASSES]
        for p in order:
            e = passes[p]
            pct = 100.0 * e["saturated"] / e["tiles"] if e["tiles"] else 0.0
            rows.append({"layer": layer, "pass": p, "tiles": e["tiles"],
                         "saturated": e["saturated"], "sat_pct": pct,
                         "max_abs": e["max_abs"], "range": rng,
                         "max_over_range": (e["max_abs"] / rng) if rng else None,
                         "levels_used": e["levels_used"],
                         "flagged": pct > threshold})
            if "flushed" in e:
                rows[-1]["flushed"] = e["flushed"]
                rows[-1]["flushed_pct"] = 100.0 * e["flushed"] / e["tiles"] if e["tiles"] else 0.0
            if "acc_adds" in e:
                for k in ACC_FIELDS + ("acc_max_abs",):
                    rows[-1][k] = e[k]
                rows[-1]["swamped_pct"] = (100.0 * e["swamped"] / e["acc_adds"]
                                           if e["acc_adds"] else 0.0)
                rows[-1]["acc_sat_pct"] = (100.0 * e["acc_saturated"] / e["acc_tiles"]
                                           if e["acc_tiles"] else 0.0)
    return rows


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def format_audit(audit: Mapping, acc_bits: int | None, threshold: float = 1.0,
                 title: str | None = None) -> str:
    """The audit as a text table; flagged layers marked ``<<`` and counted below."""
    rows = audit_rows(audit, acc_bits, threshold)
    if any("flushed" in r for r in rows):
        return _format_float_audit(rows, threshold, title)
    head = ["layer", "pass", "tiles", "saturated", "sat %", "max|psum|", "/range",
            "levels", ""]
    body = []
    for r in rows:
        body.append([
            r["layer"], PASS_SHORT.get(r["pass"], r["pass"]), _fmt_int(r["tiles"]),
            _fmt_int(r["saturated"]), f"{r['sat_pct']:.2f}", f"{r['max_abs']:.0f}",
            "-" if r["max_over_range"] is None else f"{r['max_over_range']:.2f}",
            "-" if r["levels_used"] is None else f"{100 * r['levels_used']:.0f}%",
            "<<" if r["flagged"] else ""])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)] if body else [len(h) for h in head]
    right = {2, 3, 4, 5, 6, 7}

    def line(cells):
        return "  ".join((str(c).rjust(w) if i in right else str(c).ljust(w))
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rng = acc_range(acc_bits)
    out = []
    if title:
        out.append(title)
    out.append(f"accumulator: {'unlimited' if rng is None else f'{acc_bits} bits, range +-{rng}'}"
               f"; flag threshold {threshold:g}% saturated tiles")
    if not rows:
        out.append("(no quantized matmuls recorded)")
        return "\n".join(out)
    out.append(line(head))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(b) for b in body)
    flagged = sorted({r["layer"] for r in rows if r["flagged"]})
    out.append(f"{len(flagged)} layer(s) flagged" + (f": {', '.join(flagged)}" if flagged else ""))
    return "\n".join(out)


def _format_float_audit(rows, threshold, title):
    """format_audit of a float datapath: values quantized per pass, saturated at the
    format's max and flushed to zero."""
    acc = any("acc_adds" in r for r in rows)
    head = ["layer", "pass", "values", "saturated", "sat %", "flushed", "flush %",
            "max|x/s|"] + (["acc adds", "swamped %", "absorbed", "acc ovf", "acc sat %"]
                           if acc else []) + [""]
    body = [[r["layer"], PASS_SHORT.get(r["pass"], r["pass"]), _fmt_int(r["tiles"]),
             _fmt_int(r["saturated"]), f"{r['sat_pct']:.2f}", _fmt_int(r.get("flushed", 0)),
             f"{r.get('flushed_pct', 0.0):.2f}", f"{r['max_abs']:.4g}"]
            + ([_fmt_int(r.get("acc_adds", 0)), f"{r.get('swamped_pct', 0.0):.2f}",
                _fmt_int(r.get("absorbed", 0)), _fmt_int(r.get("acc_overflows", 0)),
                f"{r.get('acc_sat_pct', 0.0):.2f}"] if acc else [])
            + ["<<" if r["flagged"] else ""] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    right = set(range(2, len(head) - 1))

    def line(cells):
        return "  ".join((str(c).rjust(w) if i in right else str(c).ljust(w))
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [title] if title else []
    out.append(f"float datapath: values rounded per pass (saturated at the format's max, "
               f"flushed to zero); flag threshold {threshold:g}% saturated values")
    if acc:
        out.append("accumulator: additions rounded (swamped: the addend partly or wholly "
                   "lost; absorbed: wholly), sums beyond the format's max (acc ovf), integer "
                   "tiles clipped (acc sat %)")
    out.append(line(head))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(b) for b in body)
    flagged = sorted({r["layer"] for r in rows if r["flagged"]})
    out.append(f"{len(flagged)} layer(s) flagged" + (f": {', '.join(flagged)}" if flagged else ""))
    return "\n".join(out)


def saturation_matrix(task_audits: list[Mapping], passes=PASSES):
    """(row labels "layer/pass", matrix [row, task] of saturation %) for heatmaps.

    Missing entries are NaN-free zeros; rows are in first-seen order."""
    labels: list[str] = []
    cells: dict[tuple[str, int], float] = {}
    for t, aud in enumerate(task_audits):
        for r in audit_rows(aud or {}, None, threshold=float("inf")):
            if r["pass"] not in passes:
                continue
            lab = f"{r['layer']}/{PASS_SHORT.get(r['pass'], r['pass'])}"
            if lab not in labels:
                labels.append(lab)
            cells[(lab, t)] = r["sat_pct"]
    mat = [[cells.get((lab, t), 0.0) for t in range(len(task_audits))] for lab in labels]
    return labels, mat
