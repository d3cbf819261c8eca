#!/usr/bin/env bash
# The distillation runs of issue 16 (README, Weights, "Distillation from NanoTrack").
#   tools/distill.sh siamfc   SiamFC with NanoTrack's soft score maps (eq. 3-6 loss + teacher term)
#   tools/distill.sh siamfc-box  SiamFC with the teacher's boxes only: eq. 3-6 on its labelled clips,
#                             no map term (--teacher-weight 0; the maps are a plateau, see the README)
#   tools/distill.sh siamrpn  SiamRPN with the teacher's foreground and per-cell boxes, from the
#                             shipped SiamRPN (its regression is where the scale signal must come from)
#   tools/distill.sh siamrpn-wide  SiamRPN from the shipped (distilled) SiamRPN on the wider
#                             teacher labels: 8 object-like start boxes per stretch, on the unlabelled
#                             clips and on the training-side labelled videos as well
#                             and a fifth of the pairs synthetic, cut from still photos (PHOTOS,
#                             default out/photos, made by tools/fetch_photos.py)
#   tools/distill.sh siamrpn-shape  a short fine-tune of the shipped SiamRPN for the box's shape: half
#                             the pairs synthetic with targets of aspect 1:4 to 4:1 (the labelled and
#                             teacher-labelled data hold few beyond 1:2), the regression weighted 3
#   tools/distill.sh siamfc-wide   the same wider data for SiamFC, eq. 3-6 only (--teacher-weight 0:
#                             the teacher's boxes are the signal; its map is a plateau, see the README)
#   tools/distill.sh siamfc-scratch  SiamFC from random weights on the same wider data, at the paper's
#                             learning rates (section 4.1: 1e-2 to 1e-5), eq. 3-6 only: the shipped
#                             SiamFC came from scratch on the 44 labelled sequences alone, and every
#                             fine-tune of it at 1e-3 lost validation AUC
#   tools/distill.sh siamfc-labelled  the recipe that made the shipped siamfc.pt (from random weights,
#                             the labelled items only, no teacher, no stills, 6 epochs x 2800 pairs at the
#                             paper's learning rates): the baseline any distilled SiamFC must beat on a split
#                             that neither trained on (16th session: siamfc.pt trained on 7 of the 8 items)
#   tools/distill.sh dsiam    DSiam's training through time (section 3.5) from a distilled SiamFC
#                             (DSIAM_INIT, default out/distill/siamfc_distill.pt); DSiam has no
#                             teacher term: it inherits the teacher through SiamFC and trains on
#                             the teacher's labelled clips as well (--teacher-weight 0)
# DISTILL_DATA=FOLDER reads another copy of the data; DISTILL_DRY_RUN=1 prints the training command's
# arguments, one a line, and runs nothing (tests/training/test_distill_script.py checks the split).
# Resumable: run it again and it carries on from out/distill/ (--resume). Every run trains on every
# item of ../shared/data except the 11 held-out sequences (and bag.avi, the held-out VOT2015_bag as
# a video) and the validation items: DTB70_Surfing06 and VOT-TIR2015_horse, or DISTILL_VAL's names
# and prefixes (whole flights follow, as in --val; no validation item is ever teacher-labelled).
# DISTILL_VAL=large is the 8-item split the next runs should use (README, "Wider data"): 1,848
# frames in 6 flights instead of 454 in 2. DISTILL_RUN=NAME names the run's files in out/distill/
# (default: the variant), so a run on another split does not resume one on the old split.
# DISTILL_VAL=none trains on every training-side item, validation items included (no validation:
# the recipe chosen on a split, then trained on train + validation).
# DISTILL_FOLD=k/K also leaves out fold k (0-based) of K of the training-side labelled items
# (tools/cv_folds.py: whole flights together), as validation: the fold models of a cross-validated
# tuning split (README, "22nd session"). DISTILL_PYTHON names the Python that cuts the folds.
# Extra arguments go to `python -m training` (e.g. --epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:?usage: tools/distill.sh siamfc|siamfc-box|siamfc-wide|siamfc-scratch|siamfc-labelled|siamrpn|siamrpn-wide|siamrpn-shape|dsiam [training options]}
shift
tracker=${variant%%-*}
DATA=${DISTILL_DATA:-../shared/data}
HELDOUT=" OTB100_Dog1 OTB100_Jogging-1 OTB100_Jogging-2 OTB100_Subway VOT2015_bag OTB100_Coke UAVDT_S1606 "
items=()
for d in "$DATA"/sequences/*/; do
  n=$(basename "$d"); [[ "$HELDOUT" == *" $n "* ]] || items+=("${d%/}")
done
for v in "$DATA"/videos/labelled/*.mp4; do
  n=$(basename "$v" .mp4)
  [[ "$HELDOUT" == *" $n "* || "$n" == UAV123_10fps_group1_* ]] || items+=("$v")
done
val_names=${DISTILL_VAL:-DTB70_Surfing06 VOT-TIR2015_horse}
[[ $val_names == large ]] && val_names="DTB70_Surfing06 VOT-TIR2015_horse UAV123_10fps_group2 UAVDT_S0310 DTB70_Gull2 OTB100_Biker"
[[ $val_names == none ]] && val_names=""
read -r -a val <<<"$val_names"
flight() { local n=${1%.mp4}; n=${n##*/}; sed -E 's/[_-][0-9]+$//' <<<"$n"; }
is_val() {  # the item (path or name) is a validation item or in a validation item's flight
  local n=${1%.mp4} v; n=${n##*/}
  for v in "${val[@]+"${val[@]}"}"; do [[ $n == "$v"* || $(flight "$n") == "$(flight "$v")" ]] && return 0; done
  return 1
}
if [[ -n ${DISTILL_FOLD:-} ]]; then
  [[ $DISTILL_FOLD =~ ^([0-9]+)/([0-9]+)$ ]] || { echo "tools/distill.sh: DISTILL_FOLD must be k/K, e.g. 0/4" >&2; exit 2; }
  side=()
  for v in "${items[@]}"; do is_val "$v" || side+=("$v"); done
  fold=$("${DISTILL_PYTHON:-.venv/bin/python}" tools/cv_folds.py "${side[@]}" --folds "${BASH_REMATCH[2]}" \
         --fold "${BASH_REMATCH[1]}") || exit 2
  for v in $fold; do v=${v%.mp4}; val+=("${v##*/}"); done
fi
clips=()
for c in "$DATA"/videos/unlabelled/*; do [[ "$(basename "$c")" == bag.avi ]] || clips+=("$c"); done
# the wider runs let the teacher label the training-side labelled videos too (never a validation video)
wide=("${clips[@]}")
for v in "${items[@]}"; do [[ $v == *.mp4 ]] && ! is_val "$v" && wide+=("$v"); done
run=${DISTILL_RUN:-${variant/-/_}}
common=(--val "${val[@]+"${val[@]}"}"
        --out "out/distill/${run}_distill.pt" --batch-size 8 --amp bf16 --threads 1
        --metric-frames 0 --checkpoint-every 100 --cache-dir out/distill/cache --resume)
photos=${PHOTOS:-out/photos}
if [[ $variant == *-wide || $variant == siamrpn-shape || $variant == siamfc-scratch ]] && [[ ! -d $photos ]]; then
  echo "tools/distill.sh $variant: no still photos in $photos; run .venv/bin/python tools/fetch_photos.py $photos" >&2
  exit 2
fi
stills=(--synthetic "$photos" --synthetic-ratio 0.2)
case "$variant" in
  siamfc-box) extra=(--teacher nano --teacher-weight 0 --teacher-label "${clips[@]}" --init resources/weights/siamfc.pt
                  --epochs 10 --pairs-per-epoch 17000 --lr 1e-3 1e-5) ;;
  siamfc)  extra=(--teacher nano --teacher-weight 0.5 --teacher-label "${clips[@]}" --init resources/weights/siamfc.pt
                  --epochs 10 --pairs-per-epoch 17000 --lr 1e-3 1e-5) ;;
  siamrpn) extra=(--teacher nano --teacher-weight 0.5 --teacher-label "${clips[@]}" --init resources/weights/siamrpn.pt
                  --epochs 10 --pairs-per-epoch 17000 --lr 1e-3 1e-5) ;;
  siamrpn-wide) extra=(--teacher nano --teacher-weight 0.5 --teacher-label "${wide[@]}" --teacher-label-objects 8
                  "${stills[@]}" --init resources/weights/siamrpn.pt --epochs 10 --pairs-per-epoch 17000 --lr 1e-3 1e-5) ;;
  siamrpn-shape) extra=(--teacher nano --teacher-weight 0.5 --synthetic "$photos" --synthetic-ratio 0.5
                  --synthetic-aspect 0.25 4 --reg-weight 3 --init resources/weights/siamrpn.pt
                  --epochs 1 --pairs-per-epoch 9600 --lr 2e-4 1e-5) ;;
  siamfc-wide) extra=(--teacher nano --teacher-weight 0 --teacher-label "${wide[@]}" --teacher-label-objects 8
                  "${stills[@]}" --init resources/weights/siamfc.pt --epochs 10 --pairs-per-epoch 17000 --lr 1e-3 1e-5) ;;
  siamfc-labelled) extra=(--epochs 6 --pairs-per-epoch 2800) ;;
  siamfc-scratch) extra=(--teacher nano --teacher-weight 0 --teacher-label "${wide[@]}" --teacher-label-objects 8
                  "${stills[@]}" --epochs 8 --pairs-per-epoch 6000) ;;
  dsiam)   init=${DSIAM_INIT:-out/distill/siamfc_distill.pt}
           [[ -f $init ]] || { echo "tools/distill.sh dsiam: $init is missing; run tools/distill.sh siamfc first" >&2; exit 2; }
           # the DSiam task's own epochs, clips and learning rates
           extra=(--init "$init" --teacher nano --teacher-weight 0 --teacher-label "${clips[@]}") ;;
  *) echo "tools/distill.sh: unknown run '$variant' (siamfc, siamfc-box, siamfc-wide, siamfc-scratch, siamfc-labelled, siamrpn, siamrpn-wide, siamrpn-shape or dsiam)" >&2; exit 2 ;;
esac
command=(.venv/bin/python -m training --tracker "$tracker" "${items[@]}" "${common[@]}" "${extra[@]}" "$@")
if [[ -n ${DISTILL_DRY_RUN:-} ]]; then printf '%s\n' "${command[@]}"; exit 0; fi  # the arguments, one a line
mkdir -p out/distill
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
exec "${command[@]}"
