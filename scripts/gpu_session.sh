#!/usr/bin/env bash
# Issue 13 on a lent GPU machine, as ONE prepared call (a session gets 15 device minutes, a call at most
# 10, and a second machine start rarely fits): training speed per backend and precision, the Keras GPU
# bench rows, and the long runs (edgenet 7/4/2 classes, the study's backbones from random weights).
#
#   here:    scripts/gpu_session.sh prepare
#            -> .gpu/ (git-ignored): keras/namex/optree wheels for the device's Python 3.12 and
#               FER2013 packed losslessly (scripts/fer2013_pack.py). PublicTest is packed too when the
#               whole call still fits the 64 MiB that may travel; otherwise Training only. To make room,
#               the tracked files the device never reads (SLIM: exported bundles, a zoo model, a figure,
#               the resume points in checkpoints/)
#               are emptied in place; `restore` (or `import`) brings them back from git.
#   device:  run(command="bash scripts/gpu_session.sh run", carry=[".gpu"], timeout_s=600)
#   here:    scripts/gpu_session.sh import <files_at>      # -> runs/gpu/<run dirs>, speed/bench JSON, log
#            then per run: fer-edge export runs/gpu/<run> --format tflite --quantize int8 --data ../shared/fer2013
#
# The device image has PyTorch, JAX (CUDA), matplotlib, opencv, onnxruntime, typer, rich, but neither
# TensorFlow nor Keras: the wheels bring Keras, fer-edge runs from this checkout (PYTHONPATH). Every stage
# is bounded by the call's deadline (--max-minutes, then `timeout`, whose SIGTERM leaves a resumable run);
# finished results are copied to $OUT as they come, so a killed call still returns them.
#
# Dry run here, on the CPU, at toy scale (GPU_SESSION_ZOO: fewer backbones, GPU_SESSION_SECONDS: the budget):
#   GPU_SESSION_SCALE=tiny GPU_SESSION_ZOO=vgg GPU_SESSION_SECONDS=900 OUT=/tmp/gs bash scripts/gpu_session.sh run
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPU_DIR="$REPO/.gpu"
LIMIT_MIB=63.8   # what may travel is 64 MiB: the tracked tree, untracked files and .gpu together (du -b sizes)
# tracked files the run never reads (it trains, and benches only the bundled .keras): 8.6 MB, the room that
# lets PublicTest travel with Training (59 MiB in all in session 21)
SLIM=(fer_edge/models/fer_edge_default_fp32.tflite fer_edge/models/fer_edge_default_fp32.onnx
      fer_edge/models/fer_edge_flip_int8.onnx fer_edge/models/fer_edge_flip_int8.tflite
      fer_edge/models/fer_edge_default_int8.onnx fer_edge/models/fer_edge_default_int8.tflite
      docs/explain/gallery.png zoo/20261202-130658-mini_xception-7c/model.keras
      zoo/20261207-183201-edgenet-7c/export/edgenet_7c_int8.onnx zoo/20261207-183201-edgenet-7c/export/edgenet_7c_int8.tflite)

# SLIM, and the resume points of long CPU runs carried between sessions in git (checkpoints/README.md): the
# device trains its own runs and never reads them. Listed by slim and restore only, here where git is (the
# device's copy of the tree may have none)
slim_files() {
  SLIM_FILES=("${SLIM[@]}")
  local f
  while IFS= read -r f; do SLIM_FILES+=("$f"); done < <(git ls-files -- 'checkpoints/*.keras' 'checkpoints/*.npz')
}

slim() {
  cd "$REPO"
  slim_files
  local f changed=()
  for f in $(git diff --name-only -- "${SLIM_FILES[@]}"); do [ -s "$f" ] && changed+=("$f"); done  # empty: slimmed before
  if [ ${#changed[@]} -gt 0 ]; then
    echo "refusing to empty files with local changes (commit or stash them first): ${changed[*]}" >&2
    exit 2
  fi
  for f in "${SLIM_FILES[@]}"; do : > "$f"; done
  echo "emptied ${#SLIM_FILES[@]} tracked files for the trip; scripts/gpu_session.sh restore brings them back"
}

restore() {
  cd "$REPO"
  slim_files
  git checkout -- "${SLIM_FILES[@]}" && echo "restored ${#SLIM_FILES[@]} tracked files from git"
}

prepare() {
  cd "$REPO"
  [ "${GPU_SLIM:-1}" = 1 ] && slim   # GPU_SLIM=0 keeps them (then PublicTest may not fit)
  mkdir -p "$GPU_DIR"
  rm -f "$GPU_DIR"/*.whl
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$GPU_DIR" keras==3.15.1 namex optree 2>&1 | grep -v "is ignored" || true
  local tree wheels
  tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  wheels=$(du -cb "$GPU_DIR"/*.whl | tail -1 | cut -f1)
  travel_mib() { python3 -c "import os,sys; print(round((int(sys.argv[1])+int(sys.argv[2])+os.path.getsize(sys.argv[3]))/2**20, 2))" \
                   "$tree" "$wheels" "$GPU_DIR/fer2013.pack"; }
  # GPU_PACK_USAGE=Training forces the smaller pack (if the device tool ever refuses the call for its size)
  python3 scripts/fer2013_pack.py pack "${FER2013:-../shared/fer2013}" "$GPU_DIR/fer2013.pack" \
    --usage "${GPU_PACK_USAGE:-Training,PublicTest}"
  local total
  total=$(travel_mib)
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$total" "$LIMIT_MIB"; then
    echo "with PublicTest the call would carry $total MiB (> $LIMIT_MIB): packing Training only"
    python3 scripts/fer2013_pack.py pack "${FER2013:-../shared/fer2013}" "$GPU_DIR/fer2013.pack" --usage Training
    total=$(travel_mib)
  fi
  echo "ready: $total MiB will travel (limit 64 MiB). On the device: bash scripts/gpu_session.sh run, carry [\".gpu\"]"
  echo "afterwards: scripts/gpu_session.sh import <files_at> (restores the emptied files), or restore"
}

run() {
  : "${OUT:?OUT is unset: on the device machine the tool sets it; for a dry run here, set OUT=/tmp/somewhere}"
  mkdir -p "$OUT"
  exec > >(tee -a "$OUT/session.log") 2>&1
  local T0 SCALE BUDGET
  T0=$(date +%s)
  SCALE="${GPU_SESSION_SCALE:-full}"
  BUDGET="${GPU_SESSION_SECONDS:-560}"   # the call's timeout_s is 600: leave time to pack the results
  left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
  say() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

  cd "$REPO"
  local SITE=/tmp/fer-edge-site
  if ! python3 -c "import keras" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$GPU_DIR"/*.whl \
      || { say "error: could not install the carried wheels"; return 2; }
    export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
  else
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export XLA_PYTHON_CLIENT_PREALLOCATE=false   # several JAX processes share the GPU
  export FER_EDGE_CACHE=/tmp/fer-edge-cache PYTHONUNBUFFERED=1 COLUMNS=160
  FE() { python3 -m fer_edge "$@"; }
  say "cpu: $(python3 -c 'from fer_edge.sysinfo import cpu_summary; print(cpu_summary())' 2>/dev/null || grep -m1 'model name' /proc/cpuinfo)"
  say "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
  python3 - <<'PY'
import importlib.metadata as md, platform
found = []
for d in ("keras", "jax", "jaxlib", "torch", "numpy", "opencv-python-headless", "onnxruntime"):
    try:
        found.append(f"{d} {md.version(d)}")
    except md.PackageNotFoundError:
        pass
print("python", platform.python_version(), "|", ", ".join(found))
PY

  # --- data
  local DATA=/tmp/fer2013
  python3 scripts/fer2013_pack.py unpack "$GPU_DIR/fer2013.pack" "$DATA" || return 2
  python3 -c "from fer_edge.data import load_raw; r = load_raw('$DATA/fer2013.csv'); print(len(r.images), 'images decoded, cached')"
  local VAL=()
  grep -q ",PublicTest$" "$DATA/fer2013.csv" || VAL=(--val-split 0.1)
  local SUB=() E_SPEED=2 E_LONG=135 E_FT=40 E_ZOO=60
  if [ "$SCALE" = tiny ]; then SUB=(--max-train 400); E_SPEED=2; E_LONG=2; E_FT=1; E_ZOO=1; fi
  say "data ready (${VAL[*]:-val = PublicTest}); scale $SCALE"

  # --- 1. training speed: edgenet 7 classes, the default recipe, 2 epochs per setting (epoch 2 = steady)
  local SPEED=/tmp/gs-speed
  rm -rf "$SPEED"
  for setting in "jax off 64" "jax bfloat16 64" "torch off 64"; do
    set -- $setting
    [ "$(left)" -lt 300 ] && { say "speed: skipping '$setting' (time)"; continue; }
    say "speed: backend $1, mixed precision $2, batch $3"
    timeout 150 python3 -m fer_edge train --backend "$1" --mixed-precision "$2" --batch-size "$3" --data "$DATA" \
      --arch edgenet --epochs "$E_SPEED" "${SUB[@]}" "${VAL[@]}" --out "$SPEED/$1-$2-$3" | tail -4
  done
  python3 - "$SPEED" "$OUT/speed.json" <<'PY'
import json, sys
from pathlib import Path
rows = []
for m in sorted(Path(sys.argv[1]).glob("*/*/metrics.json")):
    cfg = json.loads((m.parent / "config.json").read_text())
    met = json.loads(m.read_text())
    rows.append({"setting": m.parent.parent.name, "device": cfg.get("device"), "epoch_seconds": met.get("epoch_seconds"),
                 "images_per_second": met.get("images_per_second"), "val_accuracy": met["splits"]["val"]["accuracy"]})
Path(sys.argv[2]).write_text(json.dumps(rows, indent=2))
for r in rows:
    print(f"speed {r['setting']}: epochs {r['epoch_seconds']} s; {r['device']}")
PY

  # --- 2. the Keras GPU rows of the benchmark (and the same file on the CPU), per framework
  for fw in jax torch; do
    [ "$(left)" -lt 280 ] && break
    say "bench: keras on $fw, cpu and gpu"
    KERAS_BACKEND=$fw timeout 80 python3 -m fer_edge bench fer_edge/models/fer_edge_default.keras --backend keras \
      --device all --threads "$(nproc)" --batch 1,64 --no-pipeline --min-time 2 --json "$OUT/bench_$fw.json" | tail -12
  done

  # --- 3. long runs side by side on the one GPU, each bounded by what is left of the call
  local RUNS=/tmp/gs-runs M
  rm -rf "$RUNS"; mkdir -p "$RUNS"
  M=$(python3 -c "print(max(0.5, round(($(left) - 75) / 60, 1)))")
  if [ "$SCALE" != tiny ]; then
    # a cosine schedule cut by the budget ends with a high learning rate: size the epochs to the time
    # instead, from the steady (second) epoch of the speed run, counted twice for batch 256 on a shared GPU
    read -r E_LONG E_FT < <(python3 - "$SPEED" "$M" <<'PY'
import json, sys
from pathlib import Path
runs = sorted(Path(sys.argv[1]).glob("jax-off-64/*/metrics.json"))
secs = json.loads(runs[0].read_text()).get("epoch_seconds", []) if runs else []
epoch = secs[-1] if len(secs) > 1 else 3.0
# half the budget: a distilled run also runs its teacher twice a batch (flip), and four runs share the GPU
# and the cores; a cosine cycle that the budget cuts short ends at a high rate, far below one that finishes
fit = int(float(sys.argv[2]) * 60 * 0.5 / epoch)
print(max(10, min(135, fit)), max(5, min(40, fit)))
PY
)
  fi
  say "long runs: $M minutes each; edgenet 7 classes $E_LONG epochs, 4/2 classes $E_FT"
  local pids=()
  launch() {  # name threads args...
    local name=$1 threads=$2; shift 2
    FER_EDGE_LOADER_THREADS=$threads KERAS_BACKEND=jax timeout $(( $(left) - 40 )) \
      python3 -m fer_edge train --data "$DATA" "${VAL[@]}" "${SUB[@]}" --max-minutes "$M" --out "$RUNS/$name" "$@" \
      > "$RUNS/$name.log" 2>&1 &
    pids+=($!)
  }
  # edgenet, 7 classes: the issue's recipe (AdamW, cosine, label smoothing, augmentation + Random Erasing, batch 256)
  launch edgenet-7c 4 --arch edgenet --epochs "$E_LONG" --batch-size 256 --erasing 0.5 --patience 1000
  # the same, distilled from the mean of the bundled model and its 112-epoch successor (zoo/), both with
  # their flip-TTA answers: 67.15 % PublicTest together against 66.87 % for the bundle (session 27)
  local BUNDLED=fer_edge/models/fer_edge_default.keras SUCCESSOR=zoo/20261207-183201-edgenet-7c
  launch edgenet-7c-kd 4 --arch edgenet --epochs "$E_LONG" --batch-size 256 --erasing 0.5 --patience 1000 \
    --teacher "$BUNDLED" --teacher "$SUCCESSOR" --kd-tta flip --kd-temperature 3 --kd-alpha 0.7
  # 4 and 2 classes from the bundled 7-class features and its answers, with the study's class weights
  launch edgenet-4c 2 --arch edgenet --classes 4 --init "$BUNDLED" --teacher "$BUNDLED" --class-weight balanced \
    --epochs "$E_FT" --lr 1e-3 --erasing 0.5 --patience 1000
  launch edgenet-2c 2 --arch edgenet --classes 2 --init "$BUNDLED" --teacher "$BUNDLED" --class-weight balanced \
    --epochs "$E_FT" --lr 1e-3 --erasing 0.5 --patience 1000
  # the study's backbones from random weights at 48x48, to early stopping on the validation split: none by
  # default since session 21 (vgg, vgg16, resnet50v2 and resnet50 met 60 % on the CPU; a backbone's model.keras is
  # over the 16 MB that may come back, and it would take the GPU from the edgenet runs above). The two
  # short of 60 % at 48x48 from labels are worth their upscaled variants: GPU_SESSION_ZOO="efficientnetb0_96
  # resnet50_96", distilled from the bundle as on the CPU (session 23: resnet50 57.70 % from labels in 30
  # epochs, 61.19 % distilled in 21; session 24: efficientnetb0_96 57.79 % at epoch 12; docs/results.md)
  for a in ${GPU_SESSION_ZOO:-}; do
    launch "zoo-$a" 1 --arch "$a" --epochs "$E_ZOO" --patience 10 --teacher "$BUNDLED" --kd-tta flip
  done
  wait "${pids[@]}"
  say "long runs done"
  for f in "$RUNS"/*.log; do echo "== $f"; grep -E "^Epoch|time budget|early stopping|error|Error" "$f" | tail -3; done

  # --- results (at most 8 files of 16 MB come back): one tarball per group of run directories; the speed
  # runs without their models, and any model.keras over 15 MB (the large backbones) left behind
  ( cd /tmp && find gs-runs gs-speed -type f \( -name last.keras -o -name "*.partial" \) -delete
    find gs-speed -name model.keras -delete
    find gs-runs -name model.keras -size +15M -exec sh -c 'echo "left behind (size): $1"; rm "$1"' _ {} \;
    tar czf "$OUT/runs-speed.tar.gz" gs-speed
    tar czf "$OUT/runs-edgenet.tar.gz" gs-runs/edgenet-*
    if compgen -G "gs-runs/zoo-*" >/dev/null; then tar czf "$OUT/runs-zoo.tar.gz" gs-runs/zoo-*; fi )
  ls -la "$OUT"
  say "done"
}

import_results() {
  local src="${1:?usage: scripts/gpu_session.sh import DIR (the files_at of the run)}"
  restore
  cd "$REPO"
  mkdir -p runs/gpu
  for t in "$src"/runs-*.tar.gz; do tar xzf "$t" -C runs/gpu; done
  cp "$src"/*.json "$src"/session.log runs/gpu/ 2>/dev/null || true
  find runs/gpu -name config.json -path "*/20*" | sed 's|/config.json||' | sort
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  import) shift; import_results "$@" ;;
  restore) restore ;;
  *) echo "usage: scripts/gpu_session.sh prepare | run | import DIR | restore" >&2; exit 2 ;;
esac
