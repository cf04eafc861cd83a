"""Layouts of independent products (``layout.per_item``): a grouped convolution's
groups and the items of a Batched product of two activations, each run through
the datapath as a call of the item layout.

The items share the layer's site: its Generator (item s draws after item s-1,
in the order one call draws), its audit (ticked once per call, every item's
counts added to the layer's passes) and its per-layer state. So each item has
the semantics of one Dense (or one-group Conv) call: its own operand scales,
the accumulator's tiles over its own reduction, its own backward quantizers.
(The HDQT family's and LUQ's Batched calls do not come here: IntegerDatapath and
LUQDatapath run them on whole tensors, intsim.datapath.integer._forward_batched; nor
do FormatsDatapath's where its whole-tensor path is these bits,
intsim.datapath.formats.FormatsDatapath.items_vectorised.)
"""
from __future__ import annotations


class _ItemAudit:
    """The layer's audit as an item sees it: the call ticked it already."""

    def __init__(self, audit):
        self._audit = audit

    def tick(self):
        pass

    def __getitem__(self, p):
        return self._audit[p]

    def __getattr__(self, name):
        if name.startswith("__") or name == "_audit":   # copy/pickle probe an empty instance
            raise AttributeError(name)
        return getattr(self._audit, name)


class ItemSite:
    """The layer's site (intsim.datapath.base) for the items of one call."""

    def __init__(self, site):
        self.rng = site.rng
        audit = site.layer_audit
        self.layer_audit = None if audit is None else _ItemAudit(audit)
        self.training = site.training
        self.need_input_grad = site.need_input_grad
        if getattr(site, "arith_state", None) is not None:
            self.arith_state = site.arith_state


def forward_items(dp, x, W, b, layout, site):
    """(y, ctx) of a per-item layout under the datapath ``dp``: every item through
    ``dp.forward`` with ``layout.item``; ctx.backward(g) runs the items' backward
    in item order and joins (dx, dW, db)."""
    if dp.quantized and site.layer_audit is not None:
        site.layer_audit.tick()
    item_site = ItemSite(site)
    ys, ctxs = [], []
    for xi, Wi, bi in layout.split(x, W, b):
        y, ctx = dp.forward(xi, Wi, bi, layout.item, item_site)
        ys.append(y)
        ctxs.append(ctx)
    return layout.join_output(ys), _ItemsCtx(ctxs, layout)


class _ItemsCtx:
    def __init__(self, ctxs, layout):
        self.ctxs, self.layout = ctxs, layout

    def backward(self, g):
        outs = [c.backward(gi) for c, gi in zip(self.ctxs, self.layout.split_grad(g))]
        return self.layout.join_grads(*zip(*outs))
