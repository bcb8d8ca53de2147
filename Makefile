# medft: full training or fine tuning? (Tajbakhsh et al., IEEE TMI 2016) on real Caffe.
#
#   make demo              the main job on the embedded synthetic default
#   make test              install everything (Debian packages, venv, Caffe), lint, run the tests
#   make test-fast         the pure-Python tests alone (no Caffe needed, about a minute)
#   make <app>-<config>    one cell of the study, e.g. make polyp-ft-conv1
#   make <app>-all         an application's grid;  make <app>-report  its report
#   make setup | caffe | standin | weights | prototxt | bench | clean | help
#   make caffe-gpu         Caffe for today's NVIDIA GPUs (CUDA 13, cuDNN 9); then GPU=0 on any stage
#   make gpu-measure       on a GPU machine: the GPU tests and every GPU measurement (gpu/out/)
#
# Knobs: INPUT=your data in data_prep/README.md's format (default: the synthetic set),
#        DATA=data/ RUNS=runs/ FRACTION= INIT= SEEDS= BATCH= MAX_EPOCHS= PATIENCE= MAX_PATCHES= GPU=<id>
#        ENGINE=pycaffe|cli|docker:<image> (unset: medft's defaults, `medft cell --help`) SCALE=1 (demo size)

SHELL := /bin/bash
.DEFAULT_GOAL := help

SYS_PY  := /usr/bin/python3
VENV    := .venv
PY      := $(VENV)/bin/python
MEDFT   := $(VENV)/bin/medft
STAMP   := $(VENV)/.medft-installed
# the roots and every default of the study's knobs are medft's (medft/paths.py, `medft cell --help`)
ROOTS   := $(shell PYTHONPATH=python $(SYS_PY) -c 'from medft.paths import DATA_ROOT, RUNS_ROOT; print(DATA_ROOT, RUNS_ROOT)')
DATA    ?= $(word 1,$(ROOTS))
RUNS    ?= $(word 2,$(ROOTS))
SCALE   ?= 1

# One place per fact: the application and configuration tokens come from the package.
APPS    := $(shell PYTHONPATH=python $(SYS_PY) -c 'from medft.apps import APP_NAMES; print(*APP_NAMES)')
CONFIGS := $(shell PYTHONPATH=python $(SYS_PY) -c 'from medft.schedule import CONFIG_NAMES; print(*CONFIG_NAMES)')
CELLS   := $(foreach a,$(APPS),$(foreach c,$(CONFIGS),$(a)-$(c)))

.PHONY: help setup deps test-deps venv caffe caffe-gpu gpu-bundle gpu-measure test-gpu test-fast prototxt schema test lint \
        bench clean \
        clean-caffe demo cell weights standin \
        $(CELLS) $(addsuffix -all,$(APPS)) $(addsuffix -report,$(APPS))

help:
	@sed -n '2,14p' Makefile | sed 's/^# \{0,1\}//'

## --- installation -----------------------------------------------------------------------------
deps:  ## Debian packages for Caffe and the venv (installs them when run as root)
	@PYTHONPATH=python $(SYS_PY) -m medft.engines.build --deps-only --install-deps

$(STAMP): setup.py pyproject.toml | deps
	@test -x $(PY) || $(SYS_PY) -m venv --system-site-packages $(VENV)
	@echo "numpy==$$($(SYS_PY) -c 'import numpy; print(numpy.__version__)')" > $(VENV)/constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check -c $(VENV)/constraints.txt -e '.[test]'
	@touch $@

venv: $(STAMP)

caffe: venv  ## build real Caffe into the cache (instant when cached)
	@PYTHONPATH=python $(PY) -m medft.engines.build --install-deps $(if $(FORCE),--force,)

caffe-gpu: venv  ## Caffe with CUDA 13 + cuDNN 9 from NVIDIA's PyPI wheels (no GPU needed; ~35 min on 2 cores)
	@PYTHONPATH=python $(PY) -m medft.engines.build --gpu --install-deps $(if $(FORCE),--force,)

gpu-bundle: caffe-gpu  ## gpu-bundle.tar.xz: the GPU build and its libraries, for a GPU machine without them
	PYTHONPATH=python $(PY) -m medft.engines.bundle --out gpu-bundle.tar.xz

gpu-measure:  ## on a GPU machine: GPU tests + bench + one polyp cell -> gpu/out/ (BUNDLE=gpu-bundle.tar.xz)
	gpu/measure.sh $(BUNDLE)

test-gpu: venv  ## the GPU tests alone (skipped, with the reason, where there is no GPU)
	$(PY) -m pytest -q -rs tests/test_gpu.py

standin: venv caffe  ## the offline stand-in source model, trained once and cached (retrained when its recipe changed; skipped where BVLC weights exist)
	@$(MEDFT) pretrain --which | grep -q "^bvlc" || $(MEDFT) pretrain --refresh

setup: venv caffe standin
	@$(MEDFT) doctor | head -4

prototxt: venv  ## regenerate prototxt/ and solvers/ (byte-identical to the committed files)
	$(MEDFT) gen --out .

schema:  ## regenerate the Python module of our Caffe-schema subset
	cd python/medft/proto && protoc --python_out=. medft_caffe.proto

## --- checks -------------------------------------------------------------------------------------
lint: venv
	$(VENV)/bin/ruff check python tests data_prep eval gpu

test-deps:  ## what the tests need beyond Caffe: Debian's slurm-wlm and munge (the grid's Slurm test)
	@PYTHONPATH=python $(SYS_PY) -m medft.grid.localcluster --install-deps

test: setup lint test-deps
	$(PY) -m pytest -q tests

test-fast: venv  ## the pure-Python tests: no Caffe, no slow ones (about a minute)
	$(PY) -m pytest -q -m "not caffe and not slow and not gpu" tests

bench: setup  ## timings beside their Caffe references, written to bench/ (GPU=N: on that GPU)
	$(MEDFT) bench --out bench$(if $(GPU),/gpu-$(GPU),) $(if $(GPU),--gpu $(GPU),)

weights: venv  ## download BVLC AlexNet (ImageNet) and check its SHA-1; offline, says what to fetch
	$(MEDFT) pretrain --download-bvlc

## --- the study ----------------------------------------------------------------------------------
demo: setup
	$(MEDFT) demo --scale $(SCALE)

# make polyp-ft-conv1 -> make cell APP=polyp CONFIG=ft-conv1
$(CELLS): setup
	@$(MAKE) --no-print-directory cell APP=$(firstword $(subst -, ,$@)) \
	    CONFIG=$(patsubst $(firstword $(subst -, ,$@))-%,%,$@)

# the study's knobs as flags of `medft cell` and `medft grid`, which build the stages' commands
# (python/medft/chain.py); a knob left unset passes no flag, so medft's default holds
flag = $(if $(2),$(1) $(2),)
STUDY_FLAGS = --data $(DATA) --runs $(RUNS) $(call flag,--input,$(INPUT)) $(call flag,--max-patches,$(MAX_PATCHES)) \
  $(call flag,--batch,$(BATCH)) $(call flag,--max-epochs,$(MAX_EPOCHS)) $(call flag,--patience,$(PATIENCE)) \
  $(call flag,--engine,$(ENGINE)) $(call flag,--gpu,$(GPU))

cell:
	@test -n "$(APP)" -a -n "$(CONFIG)" || { echo "make cell needs APP= and CONFIG=" >&2; exit 2; }
	$(MEDFT) cell $(APP) $(CONFIG) $(call flag,--init,$(INIT)) $(call flag,--fraction,$(FRACTION)) \
	  $(call flag,--seeds,$(SEEDS)) $(STUDY_FLAGS)

# The grid of one application (medft grid: python/medft/grid/): the nine configurations, the
# reduced-data runs (scratch and ft-conv1 at each fraction: Figs. 2b, 4b, 6b) and the convergence
# study (scratch inits: Fig. 10), here one job after the other; done cells are skipped, a failed
# one is reported with its log at the end and the others go on. On a Slurm cluster:
# medft grid <app|all> --executor slurm (docs/slurm.md).
$(addsuffix -all,$(APPS)): %-all: setup
	$(MEDFT) grid $* --executor local $(STUDY_FLAGS) $(call flag,--seeds,$(SEEDS))

$(addsuffix -report,$(APPS)): %-report: setup
	$(MEDFT) report $* --runs $(RUNS) --data $(DATA) --out $(RUNS)/$*/report --force

## --- housekeeping -------------------------------------------------------------------------------
clean:  ## remove the venv and caches of this checkout (not data/, runs/ or the Caffe cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache python/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-caffe:  ## remove the cached Caffe build
	rm -rf "$$(PYTHONPATH=python $(SYS_PY) -m medft.engines.build --print-path)"
