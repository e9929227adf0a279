# TargetBench: every target that needs the environment depends on the install stamp,
# so `make test` and `make benchmark` each work by themselves on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RESULTS ?= results
SEEDS ?=
STEPS ?=

.PHONY: install test test-all faults benchmark figures results bench ui clean-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: it takes the local CPU wheel instead of a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# Every reliability test (default and slow ones; the combined-fault sweep over 5 seeds, or the one in
# TARGETBENCH_FAULT_SEED), with what each tried appended to a JSON-lines report, summarised with the date and
# commit into docs/fault-summary.md and the figures block of docs/reliability.md (also when a test failed: the
# summary says so, and the target still fails).
faults: $(STAMP)
	mkdir -p $(RESULTS)
	rm -f $(RESULTS)/fault_report.jsonl
	TARGETBENCH_FAULT_REPORT=$(abspath $(RESULTS))/fault_report.jsonl $(BIN)/python -m pytest -q -m fault; \
	status=$$?; \
	$(BIN)/python tests/fault_summary.py $(RESULTS)/fault_report.jsonl --out docs/fault-summary.md \
	  --doc docs/reliability.md && exit $$status

SUITE ?= default
BACKEND ?= local
WORKERS ?=
benchmark: $(STAMP)
	$(BIN)/python -m suite.benchmark --suite $(SUITE) --backend $(BACKEND) --results $(RESULTS) $(if $(WORKERS),--workers $(WORKERS)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(STEPS),--steps $(STEPS)) $(if $(CHECKPOINT_URI),--checkpoint-uri $(CHECKPOINT_URI))

# the default benchmark's experiment; `make benchmark STEPS=N` writes to benchmark-default-stepsN
EXPERIMENT ?= benchmark-default
REPS ?=
figures: $(STAMP)
	$(BIN)/targetbench analyze --results $(RESULTS) --experiment $(EXPERIMENT) $(if $(REPS),--reps $(REPS)) $(if $(PUBLICATION),--publication)

# The reference results in docs/results/ (suite/results.py): PART=all|classic|sensitivity|cartpole|minatar (or a
# comma list); resumable (finished trials are skipped, interrupted groups resume). Smoke runs: STEPS=, SEEDS=,
# AGENTS=, ENVS= cut the budget (a changed STEPS records into its own experiment), OUT= writes elsewhere, QUICK=1
# runs the reproduced tables with --quick, NO_RUN=1 only regenerates the files from the store, CARTPOLE_STEPS= and
# MINATAR_STEPS= change the reproduced tables' budgets (defaults in suite/results.py, TABLE_BUDGETS).
PART ?= all
OUT ?=
AGENTS ?=
ENVS ?=
results: $(STAMP)
	$(BIN)/python -m suite.results --part $(PART) --results $(RESULTS) $(if $(OUT),--out $(OUT)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(STEPS),--steps $(STEPS)) $(if $(AGENTS),--agents $(AGENTS)) $(if $(ENVS),--envs $(ENVS)) $(if $(QUICK),--quick) $(if $(NO_RUN),--no-run) $(if $(REPS),--reps $(REPS)) $(if $(CARTPOLE_STEPS),--cartpole-steps $(CARTPOLE_STEPS)) $(if $(MINATAR_STEPS),--minatar-steps $(MINATAR_STEPS))

# Speed side by side (benchmarks/bench_speed.py): the CleanRL-style reference loops (CartPole MLP, MinAtar CNN),
# ours at 1 and 16 seeds, Stable-Baselines3 DQN (an optional dependency, installed here), and where ours spends
# its time at 1, 4, 16 and 64 seeds; first the per-call numpy-vs-torch microbenchmark (benchmarks/bench_kernels.py,
# results/bench_kernels.md). ~20 min on 2 free cores.
STEPS_BENCH ?= 50000
STEPS_BENCH_MINATAR ?= 1000
REPEATS ?= 3
REPEATS_MINATAR ?= $(REPEATS)
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	mkdir -p $(RESULTS)
	$(BIN)/python benchmarks/bench_kernels.py --e2e-steps 20000 > $(RESULTS)/bench_kernels.md
	$(BIN)/python benchmarks/bench_speed.py --envs cartpole,minatar --steps $(STEPS_BENCH) --minatar-steps $(STEPS_BENCH_MINATAR) --repeats $(REPEATS) --minatar-repeats $(REPEATS_MINATAR) --breakdown --out $(RESULTS)/bench_speed.md

ui: $(STAMP)
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(RESULTS)/mlflow.db

clean-results:
	rm -rf $(RESULTS)/mlflow.db $(RESULTS)/artifacts $(RESULTS)/checkpoints
