#!/usr/bin/env bash
# Subnormal weights quantize at about the speed of ordinary ones: `qgan quantize` of the
# shipped generator and of copies scaled by 2^-130 (weights near 1e-41, subnormal) and
# 2^125 (near 1e36), one thread, median of RUNS runs each, interleaved. Before the
# library fitted such channels at a power-of-two scale, em+ 4 bits per channel took
# about 100 s on the subnormal copy.
#   benchmarks/extreme_weights.sh [RUNS] [QGAN]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
qgan=${2:-build/examples/cli/qgan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=examples/dcgan/weights/generator.safetensors
/usr/bin/python3 scripts/scaled_model.py "$input" "$work/subnormal.safetensors" -130
/usr/bin/python3 scripts/scaled_model.py "$input" "$work/huge.safetensors" 125
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for config in "em+ 4 --per-channel" "em 2" "lloyd 2 --per-channel"; do
  read -r method bits grain <<< "$config"
  declare -A times=()
  for ((run = 0; run < runs; ++run)); do
    for model in shipped subnormal huge; do
      file=$input
      [ "$model" != shipped ] && file="$work/$model.safetensors"
      start=$(date +%s.%N)
      "$qgan" quantize "$file" -o "$work/out.qgan" --method "$method" --bits "$bits" ${grain:-} --arch dcgan \
        --threads 1 > /dev/null
      times[$model]+="$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }') "
    done
  done
  shipped=$(tr ' ' '\n' <<< "${times[shipped]}" | grep . | median)
  for model in subnormal huge; do
    t=$(tr ' ' '\n' <<< "${times[$model]}" | grep . | median)
    printf "%-7s %d bits %-13s %-9s %.3f s vs shipped %.3f s: %.2fx\n" "$method" "$bits" "${grain:---per-tensor}" \
      "$model" "$t" "$shipped" "$(awk -v a="$t" -v b="$shipped" 'BEGIN { print a / b }')"
  done
  unset times
done
