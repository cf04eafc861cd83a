"""What a datapath costs: operation counts and their energy.

- :mod:`intsim.cost.tally`: the op classes (``mul:int4*int4``, ``add:int8``,
  ``quant:round``, ...) and :class:`~intsim.cost.tally.OpCounts`, ``{op class:
  count}``; :mod:`intsim.cost.counts`: a model's counts per layer and pass.
- :mod:`intsim.cost.energy`: the per-operation energy table
  (``energy_45nm.toml``, its sources and scaling rules) and the pricing of counts,
  ``load_table(path=None).price(counts)``.
- :mod:`intsim.cost.record`: the ``cost`` object of results.json
  (``cost_record``, ``merge_cost_records``, ``reprice``).
- :mod:`intsim.cost.zigzag`: an accelerator-level estimate of a layer through
  ZigZag (optional; nothing else imports it).

docs/cost.md describes the counts, docs/method.md ("What a datapath costs: the
energy model") the energy model, docs/run-folder.md the ``cost`` object.
"""
