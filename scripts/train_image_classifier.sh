#!/usr/bin/env bash
# Retrains models/medical_image_classifier.json (docs/classifier.md).
# Medical: ../shared/data vqa_rad/images, medicat_sample/figures, llava_med/examples.
# Non-medical: ../shared/data nonmedical/{charts,photos} plus, when installed (apt-get install
# octave-doc python-matplotlib-data), the Octave manual figures not already in nonmedical/charts
# and matplotlib's sample images.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${MF_SHARED_DATA:-$root/../shared/data}"
bin="${MEDFORGE:-$root/build/bin/medforge}"
extra="$(mktemp -d)"
trap 'rm -rf "$extra"' EXIT
if [ -d /usr/share/doc/octave/octave.html ]; then
  for f in /usr/share/doc/octave/octave.html/*.png; do
    b="$(basename "$f")"
    [ -e "$data/nonmedical/charts/$b" ] || cp "$f" "$extra/octave_$b"
  done
fi
for f in Minduka_Present_Blue_Pack.png grace_hopper.jpg logo2.png; do
  p=/usr/share/matplotlib/mpl-data/sample_data/$f
  [ -e "$p" ] && cp "$p" "$extra/"
done
nonmed=("$data/nonmedical/charts" "$data/nonmedical/photos")
[ -n "$(ls -A "$extra")" ] && nonmed+=("$extra")
"$bin" classifier train \
  --medical "$data/vqa_rad/images" "$data/medicat_sample/figures" "$data/llava_med/examples" \
  --nonmedical "${nonmed[@]}" --folds 5 --seed 1 --out "$root/models/medical_image_classifier.json"
