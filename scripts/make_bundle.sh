#!/usr/bin/env bash
# Rebuild the bundled default model (fer_edge/models/) from a finished training run.
# usage: scripts/make_bundle.sh RUN_DIR [DATA]
set -euo pipefail
RUN="${1:?usage: scripts/make_bundle.sh RUN_DIR [DATA]}"
DATA="${2:-../shared/fer2013}"
OUT="$(dirname "$0")/../fer_edge/models"
fer-edge export "$RUN" --format tflite,onnx --quantize int8 --explain --data "$DATA" --out "$OUT" --stem fer_edge_default
# the reference Keras model for `fer-edge bench`, without optimizer state
python3 -c "import sys, keras; keras.models.load_model(sys.argv[1], safe_mode=True, compile=False).save(sys.argv[2])" \
  "$RUN/model.keras" "$OUT/fer_edge_default.keras"
cp "$RUN/spec.json" "$OUT/fer_edge_default.spec.json"
mv "$OUT/export_report.md" "$OUT/fer_edge_default.export_report.md"
mv "$OUT/export_report.json" "$OUT/fer_edge_default.export_report.json"
