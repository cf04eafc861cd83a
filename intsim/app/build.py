"""Build a run's parts from its :class:`~intsim.app.config.RunConfig`: the CIL
configuration, the arithmetic, the data and the model."""
from __future__ import annotations

from typing import Any


from intsim.app.config import SHORT_SCHEDULE, ConfigError, RunConfig


def cil_config(cfg: RunConfig):
    """The CILConfig of a run: paper defaults for the dataset, the schedule, then
    the run's explicit settings."""
    from intsim.cil import CILConfig
    over: dict[str, Any] = {}
    if cfg.model != "auto":
        over["model"] = cfg.model
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
    try:
        cc = CILConfig.for_dataset(cfg.dataset, cfg.method, **over)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    from intsim.models import MODELS
    for k in ("hidden", "conv_bias", "conv_init"):
        if getattr(cfg, k) is not None and k not in MODELS[cc.model].options:
            raise ConfigError(f"{k} does not apply to model {cc.model} (it takes: "
                              f"{', '.join(MODELS[cc.model].options) or 'no options'})")
    return cc


def complete_config(cfg: RunConfig, cc) -> RunConfig:
    """Write the schedule's concrete values back so config.toml is complete."""
    return cfg.replace(model=cc.model, epochs=cc.epochs, min_steps=cc.min_steps or None, lr=cc.lr,
                       milestones=tuple(cc.effective_milestones), batch_size=cc.batch_size,
                       memory=cc.memory, init_classes=cc.init_classes,
                       inc_classes=cc.inc_classes)


def build_arith(cfg: RunConfig):
    """The arithmetic of the run (a registered kind, intsim.arith.ARITHS); ConfigError
    naming a bad option."""
    from intsim.arith import ARITHS
    try:
        return ARITHS[cfg.arith].from_config(cfg)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def effective_acc_bits(arith) -> int | None:
    """Accumulator bits the audit range uses (None = unlimited)."""
    return arith.acc_limit


def data_options(cfg: RunConfig) -> dict:
    """The loader options a run's settings give: for HAR datasets the subject split
    (seeded with the run seed) and the scaling; none for the others."""
    from intsim.data import dataset_spec
    if dataset_spec(cfg.dataset).kind != "har":
        return {}
    return {"split": cfg.split, "split_seed": cfg.seed, "scale": cfg.scale}


def load_data(cfg: RunConfig, hooks=None):
    """The Dataset (injected or loaded); ConfigError on missing/corrupt files."""
    if hooks is not None and hooks.dataset is not None:
        ds = hooks.dataset
    else:
        from intsim.data import load_dataset
        try:
            ds = load_dataset(cfg.dataset, cfg.data, **data_options(cfg))
        except FileNotFoundError as e:
            raise ConfigError(f"missing data for {cfg.dataset}: {e}") from None
        except ValueError as e:
            raise ConfigError(f"cannot load {cfg.dataset}: {e}") from None
    return ds


def prepare_inputs(ds, model: str):
    """The data in the layout the registered model takes (intsim.models.MODELS)."""
    from intsim.models import MODELS
    return MODELS[model].prepare(ds)


def make_model(cc, arith, in_shape, rng):
    """The registered model cc.model, without classifier outputs (ConfigError on bad shapes)."""
    from intsim.models import MODELS
    try:
        return MODELS[cc.model].build(cc, arith, in_shape, rng)
    except ValueError as e:
        raise ConfigError(str(e)) from None
