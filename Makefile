# intsim developer targets. Every benchmark grid is a SPEC file (benchmarks/specs/*.toml):
# a grid target runs its SPEC through `intsim sweep` (the runs stored in
# benchmarks/results/runs are reused, interrupted ones resume), then its script writes
# the table from the SPEC's runs (it runs nothing). Both get the same overlay:
#   QUICK=1   --overlay benchmarks/specs/quick.toml (10 epochs per task, the first seed;
#             tables *_quick.md)
#   SEEDS=n   --seeds n (only the SPEC's first n seeds)
#   JOBS=n    --workers n for the sweep (default: one per core)
# Every benchmark prints its figures beside a baseline measured in the same run,
# writes a table to benchmarks/results/ and prints the command that reproduces it.
PY ?= python
QUICK ?= 0
SEEDS ?=
JOBS ?=
SPECS := benchmarks/specs
OVERLAY := $(if $(filter 1,$(QUICK)),--overlay $(SPECS)/quick.toml) $(if $(SEEDS),--seeds $(SEEDS))
WORKERS := $(if $(JOBS),--workers $(JOBS))

.PHONY: install test test-nojit test-energy test-min test-browser bench-kernels bench-step bench-resnet bench-transformer bench-task reproduce-hapt reproduce-hapt-paper split-compare sweep-acc sweep-acc-paper ablate ablate-paper pareto tile-sweep scenarios transformer embedded clean

install:
	$(PY) -m pip install -e ".[test]"

test:
	$(PY) -m pytest -q

# The kernel and engine tests again with Numba's JIT off: the kernels then run
# as plain Python, which checks them against the same references.
test-nojit:
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q tests/test_hadamard.py tests/test_quant.py tests/test_intmm.py tests/test_kernels_fast.py tests/test_formats_fast.py tests/test_floatacc.py tests/test_luq_kernel.py tests/test_hadamard_quant.py

# intsim.cost.zigzag against ZigZag itself (the `energy` extra: pip install -e ".[energy]")
test-energy:
	$(PY) -m pytest -q tests/test_cost_zigzag.py

# The suite against the lowest versions setup.cfg allows (docs/architecture.md, "Supported
# versions"): a fresh venv in a temp folder with numpy==<min>.* etc. for every pin of
# install_requires and the test extra. It downloads them from PyPI (about 150 MB) and
# takes 5-10 minutes; CI does not run it. ARGS go to pytest (ARGS="-x").
test-min:
	PY=$(PY) bash .ci/min-versions.sh $(ARGS)

# `intsim report` in a real browser (tests/test_report_browser.py): installs Debian's
# chromium and chromium-driver (apt-get; sudo when not root) and selenium (the browser
# extra) when missing, runs the tests and keeps their two screenshots in SCREENSHOTS
SCREENSHOTS ?= benchmarks/results/report_screenshots
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-browser:
	@if [ ! -x /usr/bin/chromium ] || ! command -v chromedriver >/dev/null; then \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver; fi
	$(PY) -c "import selenium" 2>/dev/null || $(PY) -m pip install -q -e ".[browser]"
	INTSIM_REPORT_SCREENSHOTS=$(SCREENSHOTS) $(PY) -m pytest -q -rs tests/test_report_browser.py

bench-kernels:
	$(PY) benchmarks/bench_kernels.py

bench-step:
	$(PY) benchmarks/bench_step.py

# one ResNet-32 step (FP, HDQT clamp/saturate, LUQ) against the float32 GEMM limit and the
# FCNet-561 HDQT/FP step ratio, each process started on an idle machine (load < 0.5; waits up
# to LOAD_WAIT=300 s); ROUNDS=2 interleaved rounds, best of REPEATS=5 steps; ARITHS=fp,...,fcnet
bench-resnet:
	QUICK=$(QUICK) $(PY) benchmarks/bench_resnet.py

# one step of the reference transformers under HDQT 4/8, FP8 and LUQ 4 vs their FP step
bench-transformer:
	QUICK=$(QUICK) $(PY) benchmarks/bench_transformer.py

# one CIFAR-10 iCaRL task part by part (training, exemplars, class means, evaluation)
bench-task:
	$(PY) benchmarks/bench_task.py $(if $(filter 1,$(FULL)),--full)

# both tables: the former fixed split (3 seeds) and the paper's split with DER/MEMO/FP134 rows
reproduce-hapt:
	intsim sweep $(SPECS)/reproduce_hapt.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/reproduce_hapt.py --spec $(SPECS)/reproduce_hapt.toml $(OVERLAY)
	$(MAKE) reproduce-hapt-paper

# the same grid with the authors' subject split, 5 seeds, DER/MEMO and FP134 rows,
# and the DER/MEMO audit by layer group
reproduce-hapt-paper:
	intsim sweep $(SPECS)/reproduce_hapt_paper.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/reproduce_hapt.py --spec $(SPECS)/reproduce_hapt_paper.toml $(OVERLAY)
	$(PY) benchmarks/growing_audit.py --spec $(SPECS)/reproduce_hapt_paper.toml $(OVERLAY)

# HAPT iCaRL FP vs HDQT 4/8 over the paper's 20 seeds with its subject split, beside the former split
split-compare:
	intsim sweep $(SPECS)/split_compare.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/split_compare.py --spec $(SPECS)/split_compare.toml $(OVERLAY)

# both tables: the former fixed split and the paper's split (sweep-acc-paper)
sweep-acc:
	intsim sweep $(SPECS)/sweep_acc.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/sweep_acc.py --spec $(SPECS)/sweep_acc.toml $(OVERLAY)
	$(MAKE) sweep-acc-paper

sweep-acc-paper:
	intsim sweep $(SPECS)/sweep_acc_paper.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/sweep_acc.py --spec $(SPECS)/sweep_acc_paper.toml $(OVERLAY)

# both tables: the former fixed split and the paper's split (ablate-paper)
ablate:
	intsim sweep $(SPECS)/ablate.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/ablate.py --spec $(SPECS)/ablate.toml $(OVERLAY)
	$(MAKE) ablate-paper

ablate-paper:
	intsim sweep $(SPECS)/ablate_paper.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/ablate.py --spec $(SPECS)/ablate_paper.toml $(OVERLAY)

# accuracy against energy: HDQT and LUQ at 3_6 .. 8_16 (HAPT iCaRL, paper split), with the
# Pareto figure (benchmarks/results/pareto.png; tile-sweep draws tile_sweep.png)
pareto:
	intsim sweep $(SPECS)/pareto.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/cost_tables.py --spec $(SPECS)/pareto.toml $(OVERLAY)

# the accumulator tile (8..128) against its width (6..12 bits) for HDQT: accuracy,
# saturation and energy
tile-sweep:
	intsim sweep $(SPECS)/tile_sweep.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/cost_tables.py --spec $(SPECS)/tile_sweep.toml $(OVERLAY)

# task- and domain-incremental HAPT (FP, HDQT 4/8, LUQ 4/8; iCaRL, LwF, finetune, DER in
# the task scenario): accuracy by task, forgetting and backward transfer
scenarios:
	intsim sweep $(SPECS)/scenarios.toml $(OVERLAY) $(WORKERS) && $(PY) benchmarks/scenario_tables.py --spec $(SPECS)/scenarios.toml $(OVERLAY)

# a transformer encoder on raw HAPT windows (FP, HDQT 4/8, attention fp32, FP8; single-task
# and iCaRL); reads HAPT's raw download (the SPEC's data, or DATA=PATH)
transformer:
	intsim sweep $(SPECS)/transformer.toml $(OVERLAY) $(WORKERS) $(if $(DATA),--set data=$(DATA)) && $(PY) benchmarks/transformer_tables.py --spec $(SPECS)/transformer.toml $(OVERLAY) $(if $(DATA),--set data=$(DATA))

clean:
	rm -rf build dist *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Rebuild the HAPT-561 features shipped inside the package from the raw data
# (same bytes from the same input).
HAPT_RAW ?= ../shared/data/hapt
embedded:
	intsim data build-hapt $(HAPT_RAW) intsim/data/hapt561.npz
