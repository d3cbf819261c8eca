#!/usr/bin/env bash
# The SiamFC distillation run of issue 16 (README, Weights, "Distillation from NanoTrack").
# Resumable: run it again and it carries on from out/distill/ (--resume). Trains on every item of
# ../shared/data except the 11 held-out sequences (and bag.avi, the held-out VOT2015_bag as a video).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data
HELDOUT=" OTB100_Dog1 OTB100_Jogging-1 OTB100_Jogging-2 OTB100_Subway VOT2015_bag OTB100_Coke UAVDT_S1606 "
items=()
for d in "$DATA"/sequences/*/; do
  n=$(basename "$d"); [[ "$HELDOUT" == *" $n "* ]] || items+=("${d%/}")
done
for v in "$DATA"/videos/labelled/*.mp4; do
  n=$(basename "$v" .mp4)
  [[ "$HELDOUT" == *" $n "* || "$n" == UAV123_10fps_group1_* ]] || items+=("$v")
done
clips=()
for c in "$DATA"/videos/unlabelled/*; do [[ "$(basename "$c")" == bag.avi ]] || clips+=("$c"); done
mkdir -p out/distill
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m training --tracker siamfc "${items[@]}" --val DTB70_Surfing06 VOT-TIR2015_horse \
  --teacher nano --teacher-weight 0.5 --teacher-label "${clips[@]}" \
  --init resources/weights/siamfc.pt --out out/distill/siamfc_distill.pt --epochs 10 --pairs-per-epoch 17000 \
  --batch-size 8 --lr 1e-3 1e-5 --amp bf16 --threads 1 --metric-frames 0 --checkpoint-every 100 \
  --cache-dir out/distill/cache --resume "$@"
