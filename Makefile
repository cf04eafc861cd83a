# intsim developer targets. reproduce-hapt(-paper), sweep-acc and ablate run their
# grid (benchmarks/specs/*.toml) through `intsim sweep`, reusing the runs stored
# in benchmarks/results/runs, then write the table; QUICK=1 or SEEDS=n use the
# scripts' own job lists. Every benchmark prints its figures beside a
# baseline measured in the same run and writes a table to benchmarks/results/.
PY ?= python
QUICK ?= 0

.PHONY: install test test-nojit bench-kernels bench-step bench-resnet bench-task reproduce-hapt reproduce-hapt-paper split-compare sweep-acc sweep-acc-paper ablate ablate-paper embedded clean

install:
	$(PY) -m pip install -e ".[test]"

test:
	$(PY) -m pytest -q

# The kernel and engine tests again with Numba's JIT off: the kernels then run
# as plain Python, which checks them against the same references.
test-nojit:
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q tests/test_hadamard.py tests/test_quant.py tests/test_intmm.py tests/test_kernels_fast.py tests/test_formats_fast.py

bench-kernels:
	$(PY) benchmarks/bench_kernels.py

bench-step:
	$(PY) benchmarks/bench_step.py

# one ResNet-32 step (FP, HDQT clamp/saturate, LUQ) against the float32 GEMM limit
bench-resnet:
	QUICK=$(QUICK) $(PY) benchmarks/bench_resnet.py

# one CIFAR-10 iCaRL task part by part (training, exemplars, class means, evaluation)
bench-task:
	$(PY) benchmarks/bench_task.py $(if $(filter 1,$(FULL)),--full)

# both tables: the former fixed split (3 seeds) and the paper's split with DER/MEMO/FP134 rows
reproduce-hapt:
ifeq ($(QUICK)$(SEEDS),0)
	intsim sweep benchmarks/specs/reproduce_hapt.toml && $(PY) benchmarks/reproduce_hapt.py --table-only
	$(MAKE) reproduce-hapt-paper
else
	QUICK=$(QUICK) $(PY) benchmarks/reproduce_hapt.py
endif

# the same grid with the authors' subject split, 5 seeds, and DER/MEMO rows
reproduce-hapt-paper:
	intsim sweep benchmarks/specs/reproduce_hapt_paper.toml && $(PY) benchmarks/reproduce_hapt.py --split paper --table-only

# HAPT iCaRL FP vs HDQT 4/8 over the paper's 20 seeds with its subject split, beside the former split
split-compare:
	$(PY) benchmarks/split_compare.py

# both tables: the former fixed split and the paper's split (sweep-acc-paper)
sweep-acc:
ifeq ($(QUICK)$(SEEDS),0)
	intsim sweep benchmarks/specs/sweep_acc.toml && $(PY) benchmarks/sweep_acc.py --table-only
	$(MAKE) sweep-acc-paper
else
	QUICK=$(QUICK) $(PY) benchmarks/sweep_acc.py
endif

# both tables: the former fixed split and the paper's split (ablate-paper)
ablate:
ifeq ($(QUICK)$(SEEDS),0)
	intsim sweep benchmarks/specs/ablate.toml && $(PY) benchmarks/ablate.py --table-only
	$(MAKE) ablate-paper
else
	QUICK=$(QUICK) $(PY) benchmarks/ablate.py
endif

# the accumulator sweep and the ablations with the authors' subject split
sweep-acc-paper:
	intsim sweep benchmarks/specs/sweep_acc_paper.toml && $(PY) benchmarks/sweep_acc.py --split paper --table-only

ablate-paper:
	intsim sweep benchmarks/specs/ablate_paper.toml && $(PY) benchmarks/ablate.py --split paper --table-only

clean:
	rm -rf build dist *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Rebuild the HAPT-561 features shipped inside the package from the raw data
# (same bytes from the same input).
HAPT_RAW ?= ../shared/data/hapt
embedded:
	intsim data build-hapt $(HAPT_RAW) intsim/data/hapt561.npz
