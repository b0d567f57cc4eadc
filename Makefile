# Two commands on a fresh machine: `make demo` and `make test`.
# Each sets up what it needs (venv, packages, models, photos) and reuses it next time.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
IMAGES := tests/images
DEMO   := $(or $(TMPDIR),/tmp)/facecli-demo

BENCH_VENV := $(HOME)/.cache/facecli/bench-venv

# Models live in $FACECLI_MODELS, else $XDG_DATA_HOME/facecli/models; the checkout's targets (and
# its tests) use its own git-ignored models/ unless FACECLI_MODELS is set.
export FACECLI_MODELS ?= $(CURDIR)/models

.PHONY: install models images test demo accuracy bench bench-library lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

models: install
	$(BIN)/facecli models build

images: install
	$(BIN)/python tests/helpers/fetch_images.py $(IMAGES)

lint: install
	$(BIN)/ruff check .

test: models images lint
	$(BIN)/python -m pytest -q

demo: models images
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "== enroll one photo per person (one-shot)"
	FACECLI_GALLERY=$(DEMO)/gallery.db $(BIN)/facecli enroll obama $(IMAGES)/obama.jpg
	FACECLI_GALLERY=$(DEMO)/gallery.db $(BIN)/facecli enroll biden $(IMAGES)/biden.jpg
	@echo "== verify two photos (exit 0 = same person)"
	FACECLI_GALLERY=$(DEMO)/gallery.db $(BIN)/facecli verify $(IMAGES)/obama2.jpg $(IMAGES)/obama3.jpg
	@echo "== verify a claim (exit 1 = not that person)"
	FACECLI_GALLERY=$(DEMO)/gallery.db $(BIN)/facecli verify $(IMAGES)/biden.jpg --claim obama \
		|| echo "(exit $$?: a different person)"
	@echo "== identify every face"
	FACECLI_GALLERY=$(DEMO)/gallery.db $(BIN)/facecli identify $(IMAGES)/obama2.jpg $(IMAGES)/obama3.jpg \
		$(IMAGES)/obama_partial_face.jpg $(IMAGES)/32bit.png --top-k 2
	@echo "== the same as JSON Lines, paths from stdin"
	ls $(IMAGES)/obama*.jpg | FACECLI_GALLERY=$(DEMO)/gallery.db $(BIN)/facecli identify - --json

# LFW and open-set accuracy of each pipeline variant (needs LFW: $FACECLI_LFW, else ../shared/lfw; ~90 min the first
# time, cached after)
accuracy: models
	$(BIN)/python -m pip install --quiet -e '.[plot]'
	$(BIN)/python bench/lfw_variants.py
	$(BIN)/python bench/openset_variants.py
	$(BIN)/python bench/fusion_weights.py --flip sface
	$(BIN)/python bench/small_faces.py
	$(BIN)/facecli eval openset --plot bench/openset-det.png --quiet

# The anchor of the throughput benchmark, in its own venv so dlib never touches .venv
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet dlib-bin==20.0.1.post1 face_recognition_models==0.3.0 \
		click pillow numpy
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps face_recognition==1.3.0
	touch $@

# Throughput, cold start and 1:N search against face_recognition (~35 min; see bench/RESULTS.md)
bench: models images $(BENCH_VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/throughput.py

# The photo library: index 5,000 LFW photos, re-index, find at 10k and 100k faces (~15 min; bench/RESULTS.md)
bench-library: models $(BENCH_VENV)/.installed
	$(BIN)/python bench/library.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
