"""Drive a continual-learning run (class-, task- or domain-incremental: the
scenario is config.scenario) over all tasks of a stream.

``run_cil`` is a plain function used by the CLI and the benchmarks. After
every task it hands ``on_task_end`` a checkpoint dict; passing that dict
back as ``state`` (with the same stream, factory, config and seed) continues
the run and reproduces exactly the results of an uninterrupted run.
"""
from __future__ import annotations

import copy
import time
from collections import Counter

import numpy as np

from intsim.cost.counts import layer_counts, layer_datapaths, model_calls, reset_calls
from intsim.errors import diverged_in

from . import metrics
from .registry import method_class


def make_learner(model, config, rng):
    """The registered Learner subclass for config.method."""
    return method_class(config.method)(model, config, rng)


def summarize_tasks(tasks: list, key: str = "cnn"):
    """metrics.summarize over the per-task eval dicts (None if key absent), with the
    metrics by task (its "by_task") when every task has its row of the accuracy matrix."""
    if not tasks or tasks[0].get(key) is None:
        return None
    rows = [t[key].get("task_acc") for t in tasks]
    return metrics.summarize([t[key]["acc"] for t in tasks],
                             [t[key]["per_class"] for t in tasks],
                             rows if all(r is not None for r in rows) else None)


def _audit_dict(model) -> dict:
    out = {}
    for layer, passes in model.audit().items():
        out[layer] = {p: (a.as_dict() if hasattr(a, "as_dict") else dict(a))
                      for p, a in passes.items()}
    return out


def run_cil(stream, model_factory, config, rng, on_task_end=None, on_epoch=None,
            start_task=0, state=None, progress=None) -> dict:
    """Train and evaluate ``config.method`` over every task of ``stream``.

    stream: intsim.data.TaskStream, or a domain stream (intsim.data.domains) for
        the domain scenario (num_tasks, task(t), class_order).
    model_factory: callable(rng: Generator) -> model with no (or fewer)
        classifier outputs than the first task; it fixes the arithmetic (FP,
        HDQT, LUQ). The learner grows the classifier each task.
    config: CILConfig. rng: np.random.Generator; two children are spawned
        from it, one for the model's initialisation and quantizer streams,
        one for the learner (batch order, augmentation, new classifier rows,
        BiC split), so the seed fixes every draw.
    on_task_end: callable(t, results, checkpoint) after each task; checkpoint
        = {"next_task": t+1, "learner": learner.state_dict(), "results": results}.
    on_epoch: callable(info dict) after each epoch (see Learner).
    progress: optional intsim.app.progress.Progress-like object (per batch bars).
    start_task, state: resume from a checkpoint given by on_task_end
        (start_task must be 0 or equal to state["next_task"]).

    Returns results: {"method", "config", "class_order", "num_tasks",
    "tasks": [per-task eval dict + "seconds", "audit", "op_counts" ({layer: {pass:
    {op class: count}}}, intsim.cost.counts), ("bias" for BiC)],
    "cnn": summary, "nme": summary or None}, summaries as metrics.summarize
    with the accuracy matrix's metrics in "by_task" (accuracies in percent).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError("run_cil: rng must be a numpy Generator")
    model_rng, learner_rng = rng.spawn(2)
    model = model_factory(model_rng)
    learner = make_learner(model, config, learner_rng)
    learner.num_tasks = int(stream.num_tasks)
    learner.on_epoch = on_epoch
    results = {"method": config.method, "config": config.to_dict(),
               "class_order": [int(c) for c in np.asarray(stream.class_order)],
               "num_tasks": int(stream.num_tasks), "tasks": [], "cnn": None, "nme": None}
    first = int(start_task)
    if state is not None:
        nxt = int(state["next_task"])
        if first not in (0, nxt):
            raise ValueError(f"run_cil: start_task {first} does not match the checkpoint's "
                             f"next task {nxt}")
        first = nxt
        learner.load_state_dict(state["learner"])
        results = copy.deepcopy(state["results"])
    elif first != 0:
        raise ValueError("run_cil: start_task > 0 needs a checkpoint state")
    for t in range(first, stream.num_tasks):
        t0 = time.perf_counter()
        task = stream.task(t)
        model.reset_audit()
        old = learner.old_model
        reset_calls(learner.model, old)
        # A float overflow becomes inf/NaN, which the next quantizer or the loss
        # refuses (NonFiniteError): that error, with where, replaces NumPy's warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            learner.incremental_train(task, progress=progress)   # raises TrainingDiverged
            old_calls = model_calls(old)          # the frozen old model's forwards (KD)
            with diverged_in(t, "exemplars and class means"):
                learner.after_task(task)
            with diverged_in(t, "evaluation"):
                ev = learner.eval_task(task)
        ev["audit"] = _audit_dict(model)
        calls = model_calls(learner.model)
        for layer, c in old_calls.items():
            calls.setdefault(layer, Counter()).update(c)
        ev["op_counts"] = layer_counts(calls, learner.model.arith,
                                       layer_datapaths(old, learner.model))
        extras = learner.task_extras()
        ev.update(extras)
        ev["extras"] = sorted(extras)          # which keys are method-specific
        ev["seconds"] = time.perf_counter() - t0
        results["tasks"].append(ev)
        results["cnn"] = summarize_tasks(results["tasks"], "cnn")
        results["nme"] = summarize_tasks(results["tasks"], "nme")
        if on_task_end is not None:
            on_task_end(t, results, {"next_task": t + 1, "learner": learner.state_dict(),
                                     "results": copy.deepcopy(results)})
    return results

