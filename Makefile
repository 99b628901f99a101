# The two commands of the README, each doing its own set-up in a local virtual environment.
#   make demo   dream the bundled sample clip with the offline default model -> out/bunny.dream.mp4
#   make test   run the test suite (what CI runs)
# And the GPU check (bench/gpu.py), which sets up what it needs itself, also without network:
#   make gpu-check    measure the GPU path; one line and exit 0 where there is no GPU (ARGS="--allow-cpu --quick": a CPU dry run)
#   make gpu-wheels   download the wheels it needs into .whl/, for Python 3.12 (WHEEL_PYTHON=...; ARGS=--dry-run lists them)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
GPU_PYTHON   ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
WHEEL_PYTHON ?= 3.12

.PHONY: demo test bench gpu-check gpu-wheels gallery clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("dreamvid needs Python >= 3.11 (set PYTHON=python3.12 ...)" if sys.version_info < (3, 11) else 0)'
	@echo "Setting up $(VENV): TensorFlow, OpenCV and the bundled models (about 1 GB; the first time takes a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,web,ray]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	@echo "Dreaming samples/bunny.mp4 (75 frames) with the default model; the output path is printed at the end"
	$(BIN)/dreamvid video samples/bunny.mp4 -o out/bunny.dream.mp4

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

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
	$(BIN)/dreamvid -q image samples/coffee.jpg -o docs/gallery/objective-class.jpg --preset dogs --max-size 360
	$(BIN)/dreamvid -q image samples/chelsea.jpg -o docs/gallery/objective-mask.jpg --mask samples/chelsea-mask.png --max-size 360 --preset swirls
	$(BIN)/dreamvid -q image samples/astronaut.jpg -o docs/gallery/objective-guide.jpg --guide samples/coffee.jpg --layer block5c_out --max-size 360 -i 30 --max-loss 1000
	$(BIN)/dreamvid -q sweep samples/chelsea.jpg -o docs/gallery/objective-channels.jpg --layer block5c_out --vary channel=0-7 --max-size 180 -i 30 --max-loss 1000 --cell-size 180

clean:
	rm -rf out .pytest_cache
