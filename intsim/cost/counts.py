"""Operation counts of a model: per layer and pass, from the shapes its layers saw.

Every Linear, Conv2d and ActivationProduct keeps ``calls``: a Counter of (pass,
Shape, training) -> calls, one increment per forward or backward call
(intsim.nn.linear), plus ("optimizer", parameter elements, True) per
weight-gradient call. The counts are the datapath's ``call_counts`` of each
shape (intsim.datapath, composed from its parts' counts) times the calls:
nothing is counted inside the kernels.
"""
from __future__ import annotations

from collections import Counter

from intsim.cost.tally import OpCounts

#: the passes of a layer's cost, and the optimizer's updates of its parameters
COST_PASSES = ("forward", "backward_input", "backward_weight", "optimizer")


def model_calls(*models) -> dict:
    """{layer name: Counter of calls} of the datapath layers of the models, added
    together by name (a learner's model and its frozen copy of the old model)."""
    out: dict = {}
    for model in models:
        if model is None:
            continue
        for name, m in model.named_modules():
            calls = getattr(m, "calls", None)
            if calls is not None and getattr(m, "arith", None) is not None:
                out.setdefault(name, Counter()).update(calls)
    return out


def layer_datapaths(*models) -> dict:
    """{layer name: its datapath} of the datapath layers of the models; a layer may run
    under another datapath than its model's (attention's float32 products,
    intsim.nn.attention)."""
    return {name: m.arith for model in models if model is not None
            for name, m in model.named_modules()
            if getattr(m, "calls", None) is not None and getattr(m, "arith", None) is not None}


def reset_calls(*models) -> None:
    for model in models:
        if model is None:
            continue
        for _, m in model.named_modules():
            if getattr(m, "calls", None) is not None:
                m.calls.clear()


def layer_counts(calls: dict, datapath, datapaths: dict | None = None) -> dict:
    """{layer: {pass: {op class: count}}} of the calls (model_calls) under ``datapath``,
    or a layer's own datapath in ``datapaths`` (layer_datapaths) where it has one."""
    out = {}
    for layer, counter in calls.items():
        dp = (datapaths or {}).get(layer, datapath)
        per: dict = {}
        for (pass_, shape, training), n in sorted(counter.items(), key=repr):
            if pass_ == "optimizer":
                c = OpCounts().add("opt:update", shape)
            else:
                c = dp.call_counts(pass_, shape, training)
            per.setdefault(pass_, OpCounts()).update(c.scaled(n))
        out[layer] = {p: per[p].plain() for p in COST_PASSES if p in per}
    return out
