#!/usr/bin/env bash
# The accuracy-campaign queue of session 1: every architecture of the zoo on FER2013 with fixed budgets
# that fit a 2-core CPU. usage: scripts/zoo_queue.sh [DATA] [OUT]   (results: OUT/leaderboard.md)
set -u
D="${1:-../shared/fer2013}"; O="${2:-runs/zoo}"
fer-edge train --data "$D" --out "$O" --arch sequential --classes 7 --epochs 20 --patience 5
fer-edge train --data "$D" --out "$O" --arch sequential --classes 2 --epochs 20 --patience 5
fer-edge train --data "$D" --out "$O" --arch sequential --classes 4 --epochs 20 --patience 5
fer-edge train --data "$D" --out "$O" --arch mini_xception --classes 7 --epochs 60 --max-minutes 10
fer-edge train --data "$D" --out "$O" --arch mini_xception --classes 2 --epochs 60 --max-minutes 4
fer-edge train --data "$D" --out "$O" --arch mini_xception --classes 4 --epochs 60 --max-minutes 4
fer-edge train --data "$D" --out "$O" --arch edgenet --classes 2 --epochs 12 --max-minutes 6
fer-edge train --data "$D" --out "$O" --arch edgenet --classes 4 --epochs 12 --max-minutes 6
fer-edge train --data "$D" --out "$O" --arch vgg --classes 7 --epochs 30 --max-minutes 10
fer-edge train --data "$D" --out "$O" --arch efficientnetb0,resnet50,resnet50v2,vgg16 --classes 7 --epochs 10 --max-minutes 4
# int8 TFLite of every finished run, for the int8 columns of docs/results.md
for run in "$O"/*/; do
  [ -f "$run/metrics.json" ] && fer-edge export "$run" --format tflite --quantize int8 --data "$D"
done
python3 "$(dirname "$0")/results_table.py" "$O"
