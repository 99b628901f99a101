# The two commands of the README, each doing its own set-up in a local virtual environment.
#   make demo   dream the bundled sample clip with the offline default model -> out/bunny.dream.mp4
#   make test   run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench gallery clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("dreamvid needs Python >= 3.11 (set PYTHON=python3.12 ...)" if sys.version_info < (3, 11) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/dreamvid video samples/bunny.mp4 -o out/bunny.dream.mp4
	@echo "Wrote out/bunny.dream.mp4"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

GALLERY_PRESETS := classic swirls coral eyes deep-octaves
gallery: $(STAMP)
	mkdir -p docs/gallery
	for p in $(GALLERY_PRESETS); do \
	  $(BIN)/dreamvid -q image samples/chelsea.jpg -o docs/gallery/preset-$$p.jpg --preset $$p || exit 1; \
	done

clean:
	rm -rf out .pytest_cache
