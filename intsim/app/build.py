"""Build a run's parts from its :class:`~intsim.app.config.RunConfig`: the CIL
configuration, the arithmetic, the data, the task stream of the scenario and the
model."""
from __future__ import annotations

import re
from typing import Any

from intsim.app.config import SHORT_SCHEDULE, ConfigError, RunConfig, check_datapath, thaw
from intsim.cil import METHODS, CILConfig, scenario_of
from intsim.data import dataset_spec, load_dataset
from intsim.datapath import PRESETS
from intsim.models import model_spec


def cil_config(cfg: RunConfig):
    """The CILConfig of a run: paper defaults for the dataset, the schedule, then
    the run's explicit settings."""
    over: dict[str, Any] = {}
    if cfg.model != "auto":
        over["model"] = cfg.model
    elif cfg.features == "raw":         # the dataset's network for its raw windows
        over["model"] = dataset_spec(cfg.dataset).raw_window_model
    if cfg.schedule == "short":
        over.update(epochs=SHORT_SCHEDULE["epochs"], milestones=tuple(SHORT_SCHEDULE["milestones"]),
                    apply_milestones=True)     # the paper's LR, held constant
        if cfg.epochs is None:                 # the floor goes with the schedule's epochs
            over["min_steps"] = SHORT_SCHEDULE["min_steps"]
    for k in ("epochs", "min_steps", "lr", "batch_size", "memory", "init_classes", "inc_classes",
              "hidden", "conv_bias", "conv_init"):
        v = getattr(cfg, k)
        if v is not None:
            over[k] = v
    if cfg.milestones is not None:
        over.update(milestones=tuple(cfg.milestones), apply_milestones=True)
    over["scenario"] = cfg.scenario
    over["attn_products"] = cfg.attn_products
    over["bic_stage2_softmax"] = cfg.bic_stage2_loss == "softmax-ce"
    if cfg.domain_tasks is not None:
        over["domain_tasks"] = cfg.domain_tasks
    try:
        cc = CILConfig.for_dataset(cfg.dataset, cfg.method, **over)
    except ValueError as e:         # name the setting, not the class that checked it
        raise ConfigError(re.sub(r"^(CILConfig(\.for_dataset)?: )+", "", str(e))) from None
    spec = model_spec_of(cc.model)
    for k in ("hidden", "conv_bias", "conv_init", "attn_products"):
        if getattr(cfg, k) != RunConfig.__dataclass_fields__[k].default \
                and k not in spec.options:
            raise ConfigError(f"{k} does not apply to model {cc.model} (it takes: "
                              f"{', '.join(spec.options) or 'no options'})")
    return cc


def ineffective_settings(cfg: RunConfig, given=()) -> list[str]:
    """One line per setting that will have no effect on the run (``intsim train``
    prints them as warnings; the run still runs): a milestone at or after the last
    epoch of every stage (the LR decays after epoch m, so m >= epochs never
    applies; with min_steps a small task may train longer, so then none is
    reported), and ``memory`` given (``given``: the settings given explicitly)
    to a method that keeps no exemplars."""
    cc = cil_config(cfg)
    out = []
    late = [m for m in cc.effective_milestones if m >= cc.epochs]
    if late and not cc.min_steps:
        which = (f"milestone {late[0]} has" if len(late) == 1 else
                 f"milestones {', '.join(map(str, late))} have")
        out.append(f"{which} no effect: the LR decays after epoch m, and each task trains "
                   f"{cc.epochs} epoch(s) (--epochs)")
    if "memory" in given and not cc.uses_memory:
        out.append(f"memory={cfg.memory} has no effect: {cfg.method} keeps no exemplars "
                   f"(methods that do: {', '.join(m for m in METHODS if METHODS[m].uses_memory)})")
    if "bic_stage2_loss" in given and cfg.method != "bic":
        out.append(f"bic_stage2_loss={cfg.bic_stage2_loss} has no effect: {cfg.method} has no "
                   f"bias-correction stage (only bic)")
    if cfg.scenario == "domain":
        for k in ("init_classes", "inc_classes"):
            if k in given:
                out.append(f"{k}={getattr(cfg, k)} has no effect: in the domain scenario every "
                           f"task has every class (--domain-tasks sets the number of tasks)")
    return out


def complete_config(cfg: RunConfig, cc) -> RunConfig:
    """Write the schedule's concrete values back so config.toml is complete."""
    return cfg.replace(model=cc.model, epochs=cc.epochs, min_steps=cc.min_steps or None, lr=cc.lr,
                       milestones=tuple(cc.effective_milestones), batch_size=cc.batch_size,
                       memory=cc.memory, init_classes=cc.init_classes,
                       inc_classes=cc.inc_classes, domain_tasks=cc.domain_tasks)


def make_stream(cfg: RunConfig, cc, ds):
    """The task stream of the run's scenario (intsim.cil.scenarios): class and task
    scenarios split the classes into tasks; the domain scenario streams subjects
    (HAR datasets) or permuted inputs (the others). ConfigError naming the problem."""
    by_subject = dataset_spec(cfg.dataset).kind == "har"
    try:
        return scenario_of(cc.scenario).stream(ds, cc, cfg.seed, by_subject=by_subject)
    except ValueError as e:
        raise ConfigError(f"cannot split {cfg.dataset} into tasks: {e}") from None


def build_arith(cfg: RunConfig):
    """The datapath of the run: its ``[datapath]`` table, else the preset ``arith``
    with its flat settings (intsim.datapath.PRESETS); ConfigError naming a bad option."""
    if cfg.datapath is not None:
        return check_datapath(thaw(cfg.datapath))
    try:
        return PRESETS[cfg.arith].from_config(cfg)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def describe_arith(cfg: RunConfig) -> str:
    """The record of the run's datapath in results.json (run.arith): the preset call
    with every knob (``HDQT(bits=4, acc_bits=8, ...)``), or the kind and fields of a
    ``[datapath]`` table."""
    if cfg.datapath is not None:
        return build_arith(cfg).describe()
    pre = PRESETS[cfg.arith]
    return pre.call_repr(pre.config_knobs(cfg))


def effective_acc_bits(arith) -> int | None:
    """Accumulator bits the audit range uses (None = unlimited)."""
    return arith.acc_limit


def data_options(cfg: RunConfig) -> dict:
    """The loader options a run's settings give: for HAR datasets the subject split
    (seeded with the run seed), the scaling and raw windows (features raw); none for
    the others."""
    if dataset_spec(cfg.dataset).kind != "har":
        return {}
    opts = {"split": cfg.split, "split_seed": cfg.seed, "scale": cfg.scale}
    if cfg.features != "vector":
        opts["features"] = cfg.features
    return opts


def load_data(cfg: RunConfig, hooks=None):
    """The Dataset (injected or loaded); ConfigError on missing/corrupt files."""
    if hooks is not None and hooks.dataset is not None:
        ds = hooks.dataset
    else:
        try:
            ds = load_dataset(cfg.dataset, cfg.data, **data_options(cfg))
        except FileNotFoundError as e:
            raise ConfigError(f"missing data for {cfg.dataset}: {e}") from None
        except ValueError as e:
            raise ConfigError(f"cannot load {cfg.dataset}: {e}") from None
    return ds


def model_spec_of(model: str):
    """The ModelSpec of a --model value, a registered name or a model file
    (intsim.models.model_spec); ConfigError of one line on a bad file."""
    try:
        return model_spec(model)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def prepare_inputs(ds, model: str):
    """The data in the layout the model takes (its ModelSpec's prepare)."""
    return model_spec_of(model).prepare(ds)


def make_model(cc, arith, in_shape, rng):
    """The model cc.model (a registered name or a model file), without classifier outputs
    (ConfigError on bad shapes)."""
    spec = model_spec_of(cc.model)
    try:
        return spec.build(cc, arith, in_shape, rng)
    except ValueError as e:
        raise ConfigError(str(e)) from None
