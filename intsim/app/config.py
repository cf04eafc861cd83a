"""One frozen run configuration, resolved from defaults <- TOML file <- options.

``resolve(file_path, overrides)`` is the only way the CLI builds a
:class:`RunConfig`. Every problem (unknown key, wrong type, value out of
range, missing data path) raises :class:`ConfigError` (a ValueError) whose
message is one line naming the offending setting, so the CLI can print it and
exit with code 2 before anything is written.

The TOML file uses the same flat keys as the command line (with ``_`` for
``-``), plus an optional ``[arith_options]`` table of extra settings of the
preset ``arith`` (e.g. ``bwd_tile = 32``) and an optional ``[datapath]``
table: a whole datapath (``kind = ...`` and its parts, or ``preset = ...``
and the settings to change; intsim.datapath), which then replaces ``arith``
and its flat settings. ``None`` has no TOML spelling; it is written and read
as the string ``"none"``. A TOML file gives numbers and lists as TOML numbers
and lists (``bits = 4``, ``hidden = [561, 561]``): the only string a numeric
setting takes there is ``"none"``. The command line passes text, which is
parsed (``--bits 4``, ``--hidden 561,561``). A file's arithmetic settings
must be ones its datapath takes (:func:`check_applicable`), as on the command
line; the config.toml a run writes keeps the others as comments, so it loads
again.

The field types of :class:`RunConfig` are the one definition of each
setting's type; the registries (datasets, models, methods, presets) are read
when a value is checked, so anything registered after import is accepted.
"""
from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Mapping

from intsim.cil import METHODS as _METHOD_KINDS
from intsim.cil import SCENARIOS as _SCENARIO_KINDS
from intsim.cil.scenarios import refusal
from intsim.cost.energy import load_table
from intsim.data.authors import find_authors_file
from intsim.data.common import SCALES, SPLITS   # HAR subject splits, feature scalings
from intsim.data.loader import HAR_FEATURES
from intsim.data.registry import DATASETS as _DATASET_SPECS
from intsim.datapath import PRESETS as _PRESETS
from intsim.datapath import datapath_from_spec
from intsim.datapath.parts import PARTS as _PARTS
from intsim.kernels.accumulator import ACC_BITS_RANGE, ACC_MODES
from intsim.kernels import threads as _threads
from intsim.models import MODELS as _MODEL_KINDS
from intsim.models import model_spec
from intsim.models.registry import is_model_file


class LiveChoices(Sequence):
    """The names of a registry, read at each use (a click.Choice takes it too)."""

    def __init__(self, read):
        self._read = read

    def _names(self):
        return tuple(self._read())

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self):
        return len(self._names())

    def __iter__(self):
        return iter(self._names())

    def __contains__(self, x):
        return x in self._names()

    def __repr__(self):
        return repr(self._names())


#: the registered datasets, models, presets and CIL methods (their registries:
#: intsim.data.registry, intsim.models, intsim.datapath.presets, intsim.cil.registry)
DATASETS = LiveChoices(lambda: _DATASET_SPECS)
MODELS = LiveChoices(lambda: ("auto",) + tuple(_MODEL_KINDS))
ARITHS = LiveChoices(lambda: _PRESETS)
METHODS = LiveChoices(lambda: _METHOD_KINDS)
SCENARIOS = LiveChoices(lambda: _SCENARIO_KINDS)
ROUNDINGS = LiveChoices(lambda: _PARTS["rounding"])
SCHEDULES = ("short", "paper")
BITS_RANGE = (2, 8)

#: The short schedule ``intsim train`` uses unless told otherwise: 15 epochs
#: per task at the paper's LR (0.01 HAR, 0.05 CIFAR) held constant; batch,
#: memory and everything else as in the paper. The default HAPT run (HDQT 4/8
#: iCaRL) then takes well under a minute on 2 idle cores and learns (see
#: README). A 5x larger LR diverges under HDQT.
#: Unless --epochs is given, it also trains each stage for at least 100 SGD steps: HAPT's first task
#: (2 classes, 187 samples: 2 steps an epoch) otherwise ends with the net still
#: predicting the larger class only (51.85 % test accuracy, FP as well as HDQT).
SHORT_SCHEDULE = {"epochs": 15, "milestones": (), "min_steps": 100}


class ConfigError(ValueError):
    """A setting is unknown, of the wrong type or out of range (one-line message)."""


class _NotGiven:
    """The type of :data:`NOT_GIVEN`."""

    def __repr__(self):
        return "NOT_GIVEN"


#: an override value that means "not given" (:func:`resolve` skips it); None is a value
NOT_GIVEN = _NotGiven()


def _setting(default, help_text):
    """A RunConfig field: its default and the help the command line shows (None: not a
    command-line option of its own)."""
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results (not where it is written).

    ``None`` for epochs/lr/batch_size/memory/init_classes/inc_classes/
    milestones means "the schedule's value"; :func:`resolve` fills them in
    when the CIL defaults are importable, so a written config.toml is
    complete.

    split / scale (HAR datasets only): the subject split ("paper", "sorted",
    "seeded"; intsim.data.common.subject_split, seeded by ``seed``; or
    "within-subject", intsim.data.common.within_subject_split) and the
    feature scaling ("none", "train-minmax"). The field defaults are the
    short schedule's (sorted, train-minmax); :func:`resolve` puts in the
    schedule's when neither the file nor the options give them
    (:func:`data_defaults`: the paper schedule takes split "paper", and scale
    "none" for the authors' files, which are already in [-1, 1]; the domain
    scenario takes split "within-subject").

    scenario / domain_tasks: the continual-learning scenario (intsim.cil.scenarios;
    "class" is class-incremental) and, for "domain" only, its number of tasks
    (None there: 5).
    """
    dataset: str = _setting("hapt", "Dataset [default: hapt, the embedded HAPT-561 features].")
    data: str | None = _setting(
        None, "Path of the official download (folder or archive), or of the authors' feature "
              "file (dsads.csv/.mat, pamap.mat/.csv, hapt_combined.csv) or a folder holding it.")
    split: str = _setting(
        "sorted", "HAR subject split: paper (the released code's random.sample, seeded with "
                  "--seed), sorted (the smallest ids train), seeded, or within-subject (every "
                  "subject's last windows of each class test) [default: within-subject with "
                  "--scenario domain, paper with --schedule paper, else sorted].")
    scale: str = _setting(
        "train-minmax", "HAR features: train-minmax (each feature to [-1, 1] with the "
                        "training subjects' min/max) or none [default: none for the authors' "
                        "files with --schedule paper, else train-minmax].")
    features: str = _setting(
        "vector", "HAR samples: vector (the dataset's feature vectors, e.g. the HAPT-561 "
                  "features) or raw (windows of the raw accelerometer and gyroscope "
                  "signals from the official download given with --data: HAPT 6 x 128 "
                  "(2.56 s at 50 Hz), DSADS 30 x 125 (5 s at 25 Hz), PAMAP2 18 x 512 "
                  "(5.12 s at 100 Hz); the model auto is then har_transformer, "
                  "har_transformer_dsads or har_transformer_pamap2) [default: vector].")
    model: str = _setting("auto", "Network: a registered name (fcnet, resnet32, vit_tiny, "
                                  "har_transformer, ...: an unknown name lists them) or a model "
                                  "file FILE.toml (docs/architecture.md) [default: auto: fcnet "
                                  "for HAR/MNIST, the dataset's har_transformer for --features "
                                  "raw, resnet32 for CIFAR].")
    attn_products: str = _setting(
        "file", "Attention products of model-file networks run under the datapath: file (as "
                "the model file says), none, qk (Q K^T), av (A V) or qk,av; the other "
                "products sum in float32 [default: file].")
    hidden: tuple[int, ...] | None = _setting(
        None, "FCNet hidden widths, e.g. '561,561' [default: two layers as wide as the input, "
              "the paper's net].")
    method: str = _setting("icarl", "CIL method [default: icarl].")
    scenario: str = _setting(
        "class", "class (class-incremental), task (the task identity given at test time: "
                 "logits masked to the task's classes) or domain (every class in every task: "
                 "HAR data streams subjects, other data permuted inputs) [default: class; "
                 "docs/scenarios.md].")
    bic_stage2_loss: str = _setting(
        "ce", "BiC's bias-correction loss: ce (cross-entropy of the logits) or softmax-ce "
              "(cross-entropy of the softmax probabilities, as the released code) "
              "[default: ce].")
    arith: str = _setting("hdqt", "Arithmetic: a datapath preset [default: hdqt].")
    bits: int = _setting(4, "Matmul operand bits (2..8) [default: 4].")
    acc_bits: int | None = _setting(8, "Accumulator bits, or 'none' for no limit [default: 8].")
    tile: int | None = _setting(32, "Accumulator tile along the reduction, or 'none' for one "
                                    "tile [default: 32].")
    acc_mode: str = _setting("clamp", "Accumulator overflow mode [default: clamp].")
    hadamard: bool = _setting(True, "HDQT: Hadamard transforms in the backward pass "
                                    "[default: on].")
    requantize: bool = _setting(True, "HDQT: re-quantize the Hadamard-transformed operands "
                                      "[default: on].")
    grad_rounding: str = _setting("stochastic", "HDQT: rounding of the error tensors "
                                                "[default: stochastic].")
    act_rounding: str = _setting("stochastic", "HDQT: rounding of H_b x [default: stochastic].")
    weight_rounding: str = _setting("nearest", "HDQT: rounding of H_o W [default: nearest].")
    fwd_clip: float = _setting(0.975, "HDQT: max-clip factor of the forward quantizers "
                                      "[default: 0.975].")
    conv_bias: bool | None = _setting(
        None, "ResNet: bias on the 3x3 convs [default: the released code's: on for "
              "quantized datapaths, off for FP].")
    conv_init: str | None = _setting(
        None, "ResNet: init of the 3x3 convs [default: kaiming_uniform for quantized "
              "datapaths, he_normal for FP].")
    # extra settings of the preset (--arith-opt KEY=VALUE, [arith_options])
    arith_options: tuple[tuple[str, Any], ...] = _setting((), None)
    datapath: tuple[tuple[str, Any], ...] | None = _setting(
        None, "A whole datapath instead of --arith: a preset name or a TOML file with a "
              "[datapath] table (kind and parts, or preset and changes; docs/architecture.md).")
    schedule: str = _setting("short", "short (quick, the default) or paper (the paper's "
                                      "epochs/LR/milestones); explicit options override it.")
    epochs: int | None = _setting(None, "Epochs per task [default: the schedule's: 15 short; "
                                        "the paper's per dataset].")
    min_steps: int | None = _setting(
        None, "Train each stage for at least this many SGD steps: a stage with fewer "
              "batches trains more epochs than --epochs (config.toml keeps --epochs, "
              "log.jsonl the epochs trained); 0 or 'none': no minimum, recorded as none "
              "[default: 100 in the short schedule without --epochs, else none].")
    lr: float | None = _setting(None, "SGD learning rate [default: the paper's for the "
                                      "dataset: 0.01 HAR, 0.05 CIFAR].")
    milestones: tuple[int, ...] | None = _setting(
        None, "LR x0.1 at these epochs, e.g. '60,100,140' ('none': constant) [default: the "
              "schedule's].")
    batch_size: int | None = _setting(None, "Training batch size [default: the paper's for "
                                            "the dataset].")
    memory: int | None = _setting(None, "Total exemplar budget of the methods that replay "
                                        "exemplars: iCaRL, BiC, DER, MEMO (LwF and finetune "
                                        "keep none) [default: the paper's for the dataset].")
    init_classes: int | None = _setting(None, "Classes in the first task [default: the "
                                              "paper's].")
    inc_classes: int | None = _setting(None, "Classes per later task [default: the paper's].")
    domain_tasks: int | None = _setting(
        None, "Tasks of --scenario domain (groups of subjects, or permutations) [default: 5 "
              "there; the other scenarios take none].")
    seed: int = _setting(42467, "Seed of class order, init and every random draw "
                                "[default: 42467].")
    audit_threshold: float = _setting(1.0, "Flag layers with more than this % saturated "
                                           "tiles [default: 1].")
    per_class: int | None = _setting(
        None, "Train on the first N training samples of each class only (the test set "
              "stays whole), for quick looks [default: all].")
    energy_table: str | None = _setting(
        None, "TOML table of per-operation energies that prices the run's operation counts "
              "[default: the packaged 45 nm table, docs/method.md].")
    # No result depends on it (docs/run-folder.md); --resume may change it.
    threads: int | None = _setting(None, "Threads for Numba kernels and OpenBLAS (OpenBLAS 1 "
                                         "when the datapath sums floats), at most the cores; "
                                         "--resume may change it [default: $INTSIM_THREADS, "
                                         "else the idle cores (the load average), shared with "
                                         "other intsim runs].")

    def to_dict(self) -> dict:
        """Plain dict (tuples as lists, arith_options as a dict)."""
        d = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "arith_options":
                v = dict(v)
            elif f.name == "datapath":
                v = thaw(v)
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        return d

    def replace(self, **kw) -> "RunConfig":
        return dataclasses.replace(self, **kw)


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
_HINTS = typing.get_type_hints(RunConfig)


def _kind_of(tp) -> tuple[str, bool]:
    """(base type name, nullable) of a RunConfig annotation."""
    args = typing.get_args(tp)
    nullable = type(None) in args
    if nullable:
        tp = next(a for a in args if a is not type(None))
    if typing.get_origin(tp) is tuple:
        return ("int_tuple" if typing.get_args(tp)[:1] == (int,) else "items"), nullable
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(tp, "other"), nullable


_KINDS = {k: _kind_of(_HINTS[k]) for k in _FIELDS}
#: the settings that may be None (spelled "none")
NULLABLE = frozenset(k for k, (_, n) in _KINDS.items() if n)
_CHOICES = {"dataset": DATASETS, "method": METHODS, "scenario": SCENARIOS,
            "arith": ARITHS,
            "acc_mode": ACC_MODES, "grad_rounding": ROUNDINGS,
            "act_rounding": ROUNDINGS, "weight_rounding": ROUNDINGS,
            "schedule": SCHEDULES, "conv_init": ("kaiming_uniform", "he_normal"),
            "split": SPLITS, "scale": SCALES, "features": HAR_FEATURES,
            "bic_stage2_loss": ("ce", "softmax-ce"),
            "attn_products": ("file", "none", "qk", "av", "qk,av")}


def freeze(v):
    """A nested table as sorted (key, value) tuples (hashable, as RunConfig holds it)."""
    if isinstance(v, Mapping):
        return tuple(sorted((str(k), freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("__list__",) + tuple(freeze(x) for x in v)
    return v


def thaw(v):
    """The table :func:`freeze` made (None stays None)."""
    if isinstance(v, tuple):
        if v[:1] == ("__list__",):
            return [thaw(x) for x in v[1:]]
        return {k: thaw(x) for k, x in v}
    return v


def datapath_table(value, where="datapath") -> dict:
    """A ``[datapath]`` value as a table: a preset name, a TOML file (its
    ``[datapath]`` table, or the whole file) or a table. ConfigError otherwise."""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if text.strip().lower() in _PRESETS:
            return {"preset": text.strip().lower()}
        if not text.endswith(".toml") and not os.path.exists(text):
            raise ConfigError(f"{where}: {text!r} is neither a preset "
                              f"({', '.join(_PRESETS)}) nor a TOML file")
        raw = load_toml(text, what="datapath file")
        return dict(raw.get("datapath", raw))
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"{where} must be a preset name, a TOML file or a table, got {value!r}")


def datapath_label(cfg: "RunConfig") -> str:
    """A short name of the run's datapath: the preset, or the [datapath] table's
    preset or kind."""
    if cfg.datapath is None:
        return cfg.arith
    t = thaw(cfg.datapath)
    return str(t.get("preset") or t.get("kind"))


def check_datapath(table: dict):
    """The datapath a table describes (ConfigError with one line naming the problem)."""
    try:
        return datapath_from_spec(table)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _coerce(key: str, value: Any, in_file: str | None = None) -> Any:
    """Check/convert one setting; raise ConfigError naming it. ``in_file``: the TOML
    file the value comes from, which must give numbers and lists as such (only
    ``"none"`` as a string); values from elsewhere may be text to parse."""
    if key not in _FIELDS:
        raise ConfigError(f"unknown setting {key!r}")
    if key == "milestones" and isinstance(value, str) and value.strip().lower() in ("none", ""):
        return ()                   # explicitly no LR decay
    if isinstance(value, str) and value.lower() == "none" and key in NULLABLE:
        return None
    if value is None:
        if key in NULLABLE:
            return None
        raise ConfigError(f"{key} cannot be none")
    if key == "datapath":
        table = datapath_table(value)
        check_datapath(table)
        return freeze(table)
    kind = _KINDS[key][0]
    if in_file is not None and isinstance(value, str) and kind in ("int", "float", "int_tuple"):
        what = {"int": "an integer", "float": "a number", "int_tuple": "a list of integers"}[kind]
        example = {"int": "4", "float": "0.5", "int_tuple": "[561, 561]"}[kind]
        raise ConfigError(f"{key} must be {what}, got the string {value!r} in {in_file} "
                          f"(TOML: {key} = {example}, unquoted)")
    if key == "model":
        return _coerce_model(value)
    if key in _CHOICES:
        if not isinstance(value, str) or value.lower() not in _CHOICES[key]:
            raise ConfigError(f"unknown {key} {value!r} (choose from {', '.join(_CHOICES[key])})")
        return value.lower()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        try:
            v = float(value)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
        if not math.isfinite(v):
            raise ConfigError(f"{key} must be finite, got {value!r}")
        return v
    if kind == "int_tuple":
        if isinstance(value, str):
            value = [p for p in value.replace(",", " ").split() if p]
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        try:
            return tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a list of integers, got {value!r}") from None
    if key == "data":
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"data must be a path, got {value!r}")
        return os.fspath(value)
    if key == "arith_options":
        if isinstance(value, Mapping):
            value = value.items()
        try:
            items = tuple(sorted((str(k), v) for k, v in value))
        except (TypeError, ValueError):
            raise ConfigError(f"arith_options must be a table of key = value, got {value!r}") from None
        return tuple((k, None if isinstance(v, str) and v.lower() == "none" else v)
                     for k, v in items)
    raise ConfigError(f"unhandled setting {key!r}")  # pragma: no cover


def _coerce_model(value) -> str:
    """A --model value: a registered name (any case) or a model file, checked now
    (ConfigError of one line naming the file and the layer)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ConfigError(f"model must be a name or a model file, got {value!r}")
    if value.lower() in MODELS:
        return value.lower()
    if not is_model_file(value):
        raise ConfigError(f"unknown model {value!r} (choose from {', '.join(MODELS)}, or give "
                          f"a model file FILE.toml)")
    try:
        model_spec(value)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return value


def parse_arith_option(text: str, option: str = "--arith-opt") -> tuple[str, Any]:
    """Parse one ``KEY=VALUE`` from ``--arith-opt`` / ``--datapath-opt`` (value read as
    TOML, else a string)."""
    if "=" not in text:
        raise ConfigError(f"{option} expects KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    k, v = k.strip().replace("-", "_"), v.strip()
    try:
        val = tomllib.loads(f"v = {v}")["v"]
    except tomllib.TOMLDecodeError:
        val = v
    return k, val


def load_toml(path, what: str = "config file", error=None) -> dict:
    """The TOML file ``path`` as a dict; ``error`` (default ConfigError) with one line
    naming ``what`` on a missing, unreadable or malformed file."""
    error = ConfigError if error is None else error
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what} {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None


def read_toml(path) -> dict:
    """Read a TOML config file; ConfigError on a missing or malformed file."""
    raw = load_toml(path)
    out = {}
    for k, v in raw.items():
        key = k.replace("-", "_")
        if isinstance(v, dict) and key not in ("arith_options", "datapath"):
            raise ConfigError(f"unknown table [{k}] in {path}")
        out[key] = v
    return out


def max_tile_sum(bits: int, tile: int | None, k: int | None = None) -> int:
    """Largest |partial sum| one tile can ever reach with ``bits``-bit operands.

    Worst case is an unsigned activation (2^bits - 1) times a signed weight
    (2^(bits-1) - 1), summed over the tile (or over ``k`` when tile is None).
    """
    n = tile if tile is not None else (k if k is not None else 1)
    return n * (2 ** bits - 1) * (2 ** (bits - 1) - 1)


def acc_bits_needed(bits: int, tile: int | None, k: int | None = None) -> int:
    """Accumulator bits (sign included) at which a tile can never saturate."""
    m = max_tile_sum(bits, tile, k)
    return int(m).bit_length() + 1


def validate(cfg: RunConfig) -> RunConfig:
    """Range checks that involve one or several settings; returns cfg."""
    lo, hi = BITS_RANGE
    if not lo <= cfg.bits <= hi:
        raise ConfigError(f"bits={cfg.bits} out of range ({lo}..{hi})")
    if cfg.acc_bits is not None:
        # The accumulator must at least hold one quantized operand; narrower
        # than that, every nonzero product saturates and nothing is simulated.
        if cfg.acc_bits < cfg.bits:
            need = acc_bits_needed(cfg.bits, cfg.tile)
            raise ConfigError(
                f"acc_bits={cfg.acc_bits} is below the {cfg.bits} bits a single "
                f"{cfg.bits}-bit operand needs (minimum acc_bits={cfg.bits}; a tile of "
                f"{cfg.tile or 'K'} never saturates at acc_bits>={need})")
        if cfg.acc_bits > ACC_BITS_RANGE[1]:
            raise ConfigError(f"acc_bits={cfg.acc_bits} out of range ({cfg.bits}..{ACC_BITS_RANGE[1]}, or none)")
    elif cfg.acc_mode in ("saturate", "wrap") and cfg.datapath is None \
            and "acc_mode" in _PRESETS[cfg.arith].config_fields:
        raise ConfigError(f"acc_mode={cfg.acc_mode} needs a width: with acc_bits=none nothing "
                          f"{'saturates' if cfg.acc_mode == 'saturate' else 'wraps'} (give "
                          f"--acc-bits N, or acc_mode clamp or wide for no limit)")
    if cfg.tile is not None and cfg.tile < 1:
        raise ConfigError(f"tile={cfg.tile} must be >= 1 (or none for one tile over K)")
    if not 0.0 < cfg.fwd_clip <= 1.0:
        raise ConfigError(f"fwd_clip={cfg.fwd_clip} out of range (0, 1]")
    for key in ("epochs", "batch_size", "init_classes", "inc_classes", "per_class", "threads",
                "domain_tasks"):
        v = getattr(cfg, key)
        if v is not None and v < 1:
            raise ConfigError(f"{key}={v} must be >= 1")
    cores = _threads.available_cores()
    if cfg.threads is not None and cfg.threads > cores:
        raise ConfigError(f"threads={cfg.threads} is more than the {cores} core(s) this "
                          f"process may use (threads 1..{cores})")
    if cfg.min_steps is not None and cfg.min_steps < 0:
        raise ConfigError(f"min_steps={cfg.min_steps} must be >= 0")
    if cfg.memory is not None and cfg.memory < 0:
        raise ConfigError(f"memory={cfg.memory} must be >= 0")
    if cfg.lr is not None and cfg.lr <= 0:
        raise ConfigError(f"lr={cfg.lr} must be > 0")
    if cfg.seed < 0 or cfg.seed >= 2 ** 32:
        raise ConfigError(f"seed={cfg.seed} out of range (0..2^32-1)")
    if cfg.audit_threshold < 0:
        raise ConfigError(f"audit_threshold={cfg.audit_threshold} must be >= 0")
    if cfg.hidden is not None and (not cfg.hidden or min(cfg.hidden) < 1):
        raise ConfigError(f"hidden={list(cfg.hidden)} must be positive widths")
    if cfg.milestones is not None and any(m < 1 for m in cfg.milestones):
        raise ConfigError(f"milestones={list(cfg.milestones)} must be positive epochs")
    if cfg.milestones is not None and list(cfg.milestones) != sorted(cfg.milestones):
        raise ConfigError(f"milestones={list(cfg.milestones)} must be in increasing order "
                          f"(e.g. {','.join(map(str, sorted(cfg.milestones)))})")
    if cfg.energy_table is not None:
        try:
            load_table(cfg.energy_table)
        except (OSError, ValueError) as e:
            raise ConfigError(f"energy_table: {e}") from None
    if cfg.data is not None and not os.path.exists(cfg.data):
        raise ConfigError(f"data path does not exist: {cfg.data}")
    spec = _DATASET_SPECS[cfg.dataset]
    if cfg.data is not None and not spec.takes_data:
        raise ConfigError(f"dataset {cfg.dataset!r} reads no file (it is generated); drop "
                          f"--data {cfg.data}")
    if cfg.data is None and not spec.builtin:
        raise ConfigError(f"dataset {cfg.dataset!r} needs --data PATH (its official download)")
    if cfg.model != "auto" and model_spec(cfg.model).needs_images and spec.kind != "image":
        raise ConfigError(f"model {cfg.model} needs image data, not {cfg.dataset!r}")
    model = cfg.model if cfg.model != "auto" else (spec.raw_window_model
                                                   if cfg.features == "raw" else None)
    refused = model_spec(model).refuses.get(cfg.method) if model else None
    if refused:
        raise ConfigError(f"model {model} cannot run method {cfg.method}: {refused}")
    if cfg.features == "raw" and spec.raw_window_model is None:
        raise ConfigError(f"features=raw is read from the raw downloads of "
                          f"{', '.join(raw_window_datasets())} only, not {cfg.dataset!r}")
    if cfg.features == "raw" and cfg.data is None:
        raise ConfigError(f"features=raw reads the raw download of {cfg.dataset}: give --data "
                          f"its official download (folder or zip)")
    if spec.kind != "har":
        for key in ("split", "scale", "features"):
            if getattr(cfg, key) != _FIELDS[key].default:
                har = ", ".join(n for n, s in _DATASET_SPECS.items() if s.kind == "har")
                raise ConfigError(f"{key}={getattr(cfg, key)} applies to the HAR datasets only "
                                  f"({har}), not {cfg.dataset!r}")
    _validate_scenario(cfg, spec)
    return cfg


def raw_window_datasets() -> list[str]:
    """The datasets whose raw signals give --features raw windows (a registered
    raw_window_model), in registration order."""
    return [n for n, s in _DATASET_SPECS.items() if s.raw_window_model is not None]


#: the split of activity data in the domain scenario: every subject trains and tests
DOMAIN_SPLIT = "within-subject"


def _validate_scenario(cfg: RunConfig, spec) -> None:
    """The scenario's checks: the method runs in it (the method's ``refuses``),
    domain_tasks only in the domain scenario, and domain tasks of activity data
    test each subject on its own held-out windows (split within-subject)."""
    why = refusal(cfg.method, cfg.scenario)
    if why is not None:
        raise ConfigError(why)
    if cfg.domain_tasks is not None and cfg.scenario != "domain":
        raise ConfigError(f"domain_tasks={cfg.domain_tasks} applies to --scenario domain only, "
                          f"not {cfg.scenario}")
    if cfg.scenario == "domain" and spec.kind == "har" and cfg.split != DOMAIN_SPLIT:
        raise ConfigError(f"split={cfg.split} holds out whole subjects, but --scenario domain "
                          f"tests each task on held-out windows of its own subjects: use "
                          f"split {DOMAIN_SPLIT} (the default there)")


def data_defaults(dataset: str, schedule: str, data=None, scenario: str = "class") -> dict:
    """split and scale of a run that does not set them: the short schedule's
    (sorted, train-minmax) unless a HAR
    dataset runs the paper schedule; that takes the released code's split
    ("paper") and, for the authors' files (already in [-1, 1]; detected from
    the ``data`` path's name, intsim.data.authors.find_authors_file), no
    scaling. A HAR dataset in the domain scenario holds out windows of every
    subject (split "within-subject", :data:`DOMAIN_SPLIT`), whatever the schedule."""
    out = {"split": _FIELDS["split"].default, "scale": _FIELDS["scale"].default}
    spec = _DATASET_SPECS.get(dataset)
    if schedule == "paper" and spec is not None and spec.kind == "har":
        out["split"] = "paper"
        if data is not None and find_authors_file(dataset, data) is not None:
            out["scale"] = "none"
    if scenario == "domain" and spec is not None and spec.kind == "har":
        out["split"] = DOMAIN_SPLIT
    return out


#: the flat settings of the presets (``--bits``, ``--acc-bits``, ...), read from the
#: registry (intsim.datapath.presets ``config_fields``)
ARITH_SETTINGS = LiveChoices(lambda: tuple(dict.fromkeys(
    k for p in _PRESETS.values() for k in p.config_fields)))


def cli_settings() -> list:
    """The RunConfig fields that are command-line options of their own, in field order:
    [(name, kind, choices or None, help)]; kind is _KINDS' type name."""
    return [(f.name, _KINDS[f.name][0], _CHOICES.get(f.name), f.metadata["help"])
            for f in dataclasses.fields(RunConfig) if f.metadata.get("help")]


def unused_settings(cfg: RunConfig) -> list[str]:
    """The arithmetic settings the run's datapath does not take (they are recorded
    in config.toml only as comments, and listed in results.json run.unused_settings):
    those its preset does not take, or all of them (and ``arith``) with a
    ``[datapath]`` table."""
    if cfg.datapath is not None:
        return ["arith"] + list(ARITH_SETTINGS)
    used = _PRESETS[cfg.arith].config_fields
    return [k for k in ARITH_SETTINGS if k not in used]


def check_applicable(cfg: RunConfig, given, source=None) -> None:
    """ConfigError when a setting given explicitly does not apply to the run's
    datapath, e.g. ``--arith fp --bits 3`` would train in float. ``given``: the
    settings given on the command line, or (``source``: the file) in a config
    file; the config.toml a run writes holds such settings only as comments."""
    bad = [k for k in given if k in unused_settings(cfg)]
    if not bad:
        return
    if source is None:
        names = ", ".join("--" + k.replace("_", "-") for k in bad)
    else:
        names = f"{', '.join(bad)} (in {source})"
    verb = "does" if len(bad) == 1 else "do"
    if cfg.datapath is not None:
        raise ConfigError(f"{names} {verb} not apply with a [datapath] table (set it in "
                          f"the table)")
    took = ", ".join(_PRESETS[cfg.arith].config_fields) or "none of the arithmetic options"
    raise ConfigError(f"{names} {verb} not apply to --arith {cfg.arith} (it takes: {took}"
                      f"{'' if source is None else '; remove it from the file'})")


def resolve(config_file=None, overrides: Mapping[str, Any] | None = None,
            other_runs: int = 0, load: float | None = None) -> RunConfig:
    """defaults <- TOML ``config_file`` <- ``overrides``.

    An override is a value (a Python value, or text as the command line gives
    it): None sets the setting to None, e.g. ``{"acc_bits": None}`` is no
    accumulator limit (as is the string ``"none"``), ``{"epochs": None}`` the
    schedule's epochs; a setting that cannot be None raises ConfigError. A
    setting not to change is left out of ``overrides``, or given as
    :data:`NOT_GIVEN`.

    ``threads`` not given in either: ``INTSIM_THREADS``, else this run's share
    of the cores with ``other_runs`` other runs active and the machine's
    ``load`` (read when not given; :func:`intsim.kernels.threads.default_threads`),
    so the result is concrete.
    ``split`` / ``scale`` not given in either: :func:`data_defaults`.
    ``datapath.PART.FIELD`` overrides change one setting of the ``[datapath]``
    table (of the preset ``arith`` when there is none). The file's
    arithmetic settings must apply to the run's datapath (:func:`check_applicable`;
    the command line checks its own options the same way).
    """
    values: dict[str, Any] = {}
    in_file: list[str] = []
    if config_file is not None:
        for k, v in read_toml(config_file).items():
            values[k] = _coerce(k, v, in_file=str(config_file))
            in_file.append(k)
    dotted = {}
    for k, v in (overrides or {}).items():
        if v is NOT_GIVEN:
            continue
        if k.startswith("datapath."):
            dotted[k[len("datapath."):]] = v
        elif k == "arith_options":
            merged = dict(values.get("arith_options", ()))
            merged.update(dict(_coerce(k, v)))
            values[k] = tuple(sorted(merged.items()))
        else:
            values[k] = _coerce(k, v)
    if dotted:
        # datapath.PART.FIELD settings (sweep axes, --datapath-opt) change the run's
        # [datapath] table, or the preset ``arith`` when there is none
        table = thaw(values.get("datapath")) or {"preset": values.get("arith", "hdqt")}
        table.update(dotted)
        values["datapath"] = _coerce("datapath", table)
    dflt = data_defaults(values.get("dataset", _FIELDS["dataset"].default),
                         values.get("schedule", _FIELDS["schedule"].default),
                         values.get("data"),
                         values.get("scenario", _FIELDS["scenario"].default))
    for k, v in dflt.items():
        values.setdefault(k, v)
    if values.get("threads") is None:
        try:
            values["threads"] = _threads.default_threads(others=other_runs, load=load)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    cfg = validate(RunConfig(**values))
    check_applicable(cfg, in_file, source=config_file)
    return cfg


# ----------------------------------------------------------------- TOML writer

def _toml_key(k: str) -> str:
    if k and all(c.isalnum() or c in "_-" for c in k):
        return k
    return _toml_str(k)


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(float(v))
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if hasattr(v, "item"):          # numpy scalar
        return _toml_value(v.item())
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(d: Mapping[str, Any], header: str = "", unused: Mapping[str, str] | None = None) -> str:
    """Write a flat mapping (values: scalars, lists, None) plus one level of tables.

    ``tomllib.loads(to_toml(d))`` gives back ``d`` with None as "none" and
    tuples as lists. Keys in ``unused`` (key -> why) are written as comments.
    """
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    tables = []
    unused = unused or {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            tables.append((k, v))
        elif k in unused:
            lines.append(f"# {_toml_key(k)} = {_toml_value(v)}    # unused: {unused[k]}")
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in tables:
        lines.append("")
        lines.append(f"[{_toml_key(k)}]")
        for kk, vv in v.items():
            if isinstance(vv, Mapping):
                lines.append(f"{_toml_key(kk)} = {_toml_value(vv)}")
            else:
                lines.append(f"{_toml_key(kk)} = {_toml_value(vv)}")
    return "\n".join(lines) + "\n"
