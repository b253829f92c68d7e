#!/usr/bin/env bash
# Issue 6, session 2: the edge model and its class-reduced versions.
#  1. 7 classes: warm restart (--init) from the 24-epoch edgenet of session 1, a fresh cosine cycle
#     at half its peak learning rate, plus the levers that won the ablation (EXTRA).
#  2. 2 and 4 classes: transfer from that 7-class model (features copied, classifier re-initialised).
# usage: scripts/campaign_queue.sh BASE_MODEL_KERAS [DATA] [OUT] [EPOCHS_7C] [EXTRA...]
set -euo pipefail
BASE="${1:?usage: scripts/campaign_queue.sh BASE_MODEL_KERAS [DATA] [OUT] [EPOCHS_7C] [EXTRA...]}"
D="${2:-../shared/fer2013}"; O="${3:-runs/campaign}"; E="${4:-36}"; shift $(( $# < 4 ? $# : 4 ))
T=(fer-edge train --data "$D" --out "$O" --arch edgenet)
R7=$("${T[@]}" --classes 7 --init "$BASE" --epochs "$E" --lr 1e-3 --patience 100 "$@" | tee /dev/stderr | tail -1)
"${T[@]}" --classes 2 --init "$R7/model.keras" --epochs 10 --lr 1e-3 "$@"
"${T[@]}" --classes 4 --init "$R7/model.keras" --epochs 10 --lr 1e-3 "$@"
# the study's VGG16 row: 705 M MACs train at ~25 images/s here (an epoch of FER2013 = 19 min), so its
# budget is one epoch on a stratified 5,000-image subsample, from random weights (no ImageNet offline)
"${T[@]/edgenet/vgg16}" --classes 7 --epochs 1 --max-train 5000
