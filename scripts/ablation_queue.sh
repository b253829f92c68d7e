#!/usr/bin/env bash
# Issue 6 ablations: edgenet 7-class, one lever at a time against the same short-budget baseline
# (6 epochs from scratch, cosine to zero, seed 42), on a 2-core CPU. Each run's config.json records
# its lever; scripts/results_table.py --ablation OUT turns the runs into the table of docs/results.md.
# usage: scripts/ablation_queue.sh [DATA] [OUT]
set -u
D="${1:-../shared/fer2013}"; O="${2:-runs/ablation}"
T=(fer-edge train --data "$D" --out "$O" --arch edgenet --classes 7 --epochs 6)
"${T[@]}"                                             # baseline: AdamW 2e-3 cosine, flip/affine/photometric aug, LS 0.1
"${T[@]}" --optimizer sgd --lr 0.05 --weight-decay 5e-4  # SGD-Nesterov instead of AdamW
"${T[@]}" --mix mixup --mix-alpha 0.2                 # + MixUp
"${T[@]}" --mix cutmix --mix-alpha 1.0                # + CutMix
"${T[@]}" --erasing 0.5                               # + Random Erasing
"${T[@]}" --no-augment                                # - all augmentation
