#!/usr/bin/env bash
# Rebuild the bundled default model (fer_edge/models/) from a finished training run or a .keras file
# with a spec beside it (STEM.spec.json or spec.json): int8 and fp32, TFLite and ONNX, with a CAM
# output, and its flip-TTA variant (fer_edge_flip_int8.*), each through the export gate (hold-out,
# validation, emulated AVX2 CPU when qemu-user is installed, int8 cross-format agreement).
# usage: scripts/make_bundle.sh RUN_DIR|MODEL.keras [DATA]
set -euo pipefail
SRC="${1:?usage: scripts/make_bundle.sh RUN_DIR|MODEL.keras [DATA]}"
DATA="${2:-../shared/fer2013}"
OUT="$(cd "$(dirname "$0")/.." && pwd)/fer_edge/models"
if [ -d "$SRC" ]; then MODEL="$SRC/model.keras"; SPEC="$SRC/spec.json"; else MODEL="$SRC"; SPEC="${SRC%.keras}.spec.json"; fi
[ -f "$SPEC" ] || SPEC="$(dirname "$MODEL")/spec.json"
TOP="$(mktemp -d)"; trap 'rm -rf "$TOP"' EXIT; TMP="$TOP/fer_edge_models"; mkdir -p "$TMP"
# work on a copy: the source may be the bundled model itself
python3 -c "import sys, keras; keras.models.load_model(sys.argv[1], safe_mode=True, compile=False).save(sys.argv[2])" \
  "$MODEL" "$TMP/fer_edge_default.keras"
# the copy leaves the run (and its config.json) behind: stamp into the spec whether the model, and every
# model it was warm-started or distilled from, trained without the gate hold-out, while that can be traced
python3 - "$MODEL" "$SPEC" "$TMP/fer_edge_default.spec.json" <<'PY'
import json, sys
from fer_edge.outputs import atomic_write_text
from fer_edge.rundir import holdout_unseen
spec = json.loads(open(sys.argv[2]).read())
spec.setdefault("metrics", {})["holdout_unseen"] = holdout_unseen(sys.argv[1])
atomic_write_text(sys.argv[3], json.dumps(spec, indent=2))
PY
fer-edge export "$TMP/fer_edge_default.keras" --format tflite,onnx --quantize none,int8 --explain --data "$DATA" \
  --out "$TMP/export" --stem fer_edge_default
# its flip-TTA variant (fer_edge.bundled.BUNDLED_MODELS): the same weights, face and mirror image averaged in
# the graph; int8 only (the single-crop files are the fp32 reference), through the same gate, with 150
# faces on the emulated CPU (with 300, its ONNX file, at twice the MACs, took over 30 minutes in QEMU)
fer-edge export "$TMP/fer_edge_default.keras" --format tflite,onnx --quantize int8 --tta flip --explain --data "$DATA" \
  --emulate-faces 150 --out "$TMP/export_flip" --stem fer_edge_flip
for f in "$TMP"/export/fer_edge_default_*; do cp "$f" "$OUT/"; done
for f in "$TMP"/export_flip/fer_edge_flip_*; do cp "$f" "$OUT/"; done
cp "$TMP/export_flip/export_report.md" "$OUT/fer_edge_flip.export_report.md"
cp "$TMP/export_flip/export_report.json" "$OUT/fer_edge_flip.export_report.json"
cp "$TMP/fer_edge_default.keras" "$TMP/fer_edge_default.spec.json" "$OUT/"
cp "$TMP/export/export_report.md" "$OUT/fer_edge_default.export_report.md"
cp "$TMP/export/export_report.json" "$OUT/fer_edge_default.export_report.json"
