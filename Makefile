# TargetBench: every target that needs the environment depends on the install stamp,
# so `make test` and `make benchmark` each work by themselves on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RESULTS ?= results
SEEDS ?=
STEPS ?=

.PHONY: install test test-all faults benchmark figures results bench gpu-check ui clean-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: it takes the local CPU wheel instead of a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The default tests in TEST_WORKERS processes (a test file stays in one process, in order); `make faults` and
# `make test-all` run one test at a time (their timings matter).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

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

# EXPERIMENT= picks one (make benchmark writes benchmark-default, STEPS=N benchmark-default-stepsN, SUITE=smoke
# sweep-smoke); without it, analyze takes the only experiment holding runs in RESULTS and lists them if several
EXPERIMENT ?=
REPS ?=
figures: $(STAMP)
	$(BIN)/targetbench analyze --results $(RESULTS) $(if $(EXPERIMENT),--experiment $(EXPERIMENT)) $(if $(REPS),--reps $(REPS)) $(if $(PUBLICATION),--publication)

# The reference results in docs/results/ (suite/results.py): PART=all|classic|sensitivity|tuned|cartpole|minatar (or
# a comma list); resumable (finished trials are skipped, interrupted groups resume). Each part that runs is
# exported from the store to OUT/runs/<part>.csv.gz and every file is derived from those per-run files alone.
# NO_RUN=1 trains nothing and reads no store: it regenerates the files from the per-run data (RUNS=DIR, else
# OUT/runs when it holds any, else docs/results/runs), byte for byte. Smoke runs: STEPS=, SEEDS=, AGENTS=, ENVS= cut
# the budget (a changed STEPS records into its own experiment), OUT= writes elsewhere, QUICK=1 runs the reproduced
# tables with --quick, CARTPOLE_STEPS= and MINATAR_STEPS= change the reproduced tables' budgets (defaults in
# suite/results.py, TABLE_BUDGETS), REPS= the bootstrap repetitions (default 2,000).
PART ?= all
OUT ?=
RUNS ?=
AGENTS ?=
ENVS ?=
results: $(STAMP)
	$(BIN)/python -m suite.results --part $(PART) --results $(RESULTS) $(if $(OUT),--out $(OUT)) $(if $(RUNS),--runs $(RUNS)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(STEPS),--steps $(STEPS)) $(if $(AGENTS),--agents $(AGENTS)) $(if $(ENVS),--envs $(ENVS)) $(if $(QUICK),--quick) $(if $(NO_RUN),--no-run) $(if $(REPS),--reps $(REPS)) $(if $(CARTPOLE_STEPS),--cartpole-steps $(CARTPOLE_STEPS)) $(if $(MINATAR_STEPS),--minatar-steps $(MINATAR_STEPS))

# Speed side by side (benchmarks/bench_speed.py): the CleanRL-style reference loops (CartPole MLP, MinAtar CNN),
# ours at 1 and 16 seeds, Stable-Baselines3 DQN at 1 seed and 16 seeds two at a time (an optional dependency,
# installed here), and where ours spends its time at 1, 4, 16 and 64 seeds; it ends with the two ratios against
# SB3 (1 seed, 16 seeds) side by side. First the per-call numpy-vs-torch microbenchmark (benchmarks/bench_kernels.py,
# results/bench_kernels.md). ~25 min on 2 free cores. BEFORE=DIR adds ours with another checkout's code (e.g.
# `git archive main | tar -x -C DIR`) to the same run.
STEPS_BENCH ?= 50000
STEPS_BENCH_MINATAR ?= 1000
REPEATS ?= 3
REPEATS_MINATAR ?= $(REPEATS)
# the contenders of a before/after run (a variable: a comma inside $(if ...) would end its branch)
BENCH_BEFORE_ONLY := ref1,before1,ours1,sb3,refN,sb3N,beforeN,oursN
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	mkdir -p $(RESULTS)
	$(BIN)/python benchmarks/bench_kernels.py --e2e-steps 20000 > $(RESULTS)/bench_kernels.md
	$(BIN)/python benchmarks/bench_speed.py --envs cartpole,minatar --steps $(STEPS_BENCH) --minatar-steps $(STEPS_BENCH_MINATAR) --repeats $(REPEATS) --minatar-repeats $(REPEATS_MINATAR) --breakdown --out $(RESULTS)/bench_speed.md $(if $(BEFORE),--before $(BEFORE) --only $(BENCH_BEFORE_ONLY))

# The GPU check (benchmarks/gpu_check.py): every agent's update on CUDA against the CPU, 16-seed CUDA runs, seeds
# per GPU (1-256) on MinAtar and Atari, torch.compile / AMP where they exist; one table, written into
# docs/performance.md. Under 10 min on one GPU; without CUDA it says so and exits 0. On a node without network,
# GPU_PYTHON=python names an interpreter that already has the project's dependencies and a CUDA build of torch.
GPU_PYTHON ?=
gpu-check: $(if $(GPU_PYTHON),,$(STAMP))
	$(or $(GPU_PYTHON),$(BIN)/python) benchmarks/gpu_check.py --out docs/performance.md

UI_PORT ?= 5000
ui: $(STAMP)
	$(BIN)/mlflow ui --host 127.0.0.1 --port $(UI_PORT) --backend-store-uri sqlite:///$(abspath $(RESULTS))/mlflow.db

clean-results:
	rm -rf $(RESULTS)/mlflow.db $(RESULTS)/artifacts $(RESULTS)/checkpoints
