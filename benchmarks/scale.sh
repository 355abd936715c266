#!/usr/bin/env bash
# Streaming at scale: writes a 1.2 GB safetensors file of 12 random-normal conv weights
# of 100 MB each (a BigGAN-size model; not committed, generated here with a fixed seed),
# then quantizes it with EM at 2 bits, per tensor and per channel, on 1 and 2 threads,
# and prints wall time and peak RSS (GNU time's %M) of each run, its ratio to the largest
# tensor, and whether the outputs of 1 and 2 threads are byte-identical.
#   benchmarks/scale.sh [WORKDIR]     (default: a fresh directory under /tmp; needs 1.4 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
qgan=build/examples/cli/qgan
gen=build/benchmarks/make_scale_model
test -x "$qgan" && test -x "$gen" || { echo "build first (scripts/build.sh)"; exit 1; }
work=${1:-$(mktemp -d)}
mkdir -p "$work"
model="$work/scale.safetensors"
[ -s "$model" ] || "$gen" "$model"
largest=$((100 * 1000 * 1000))  # bytes of each tensor (25,000,000 floats)
ls -l "$model"
lscpu | grep -E "^(Model name|L3 cache)" || true
"$qgan" --version | tail -1
for grain in per-tensor per-channel; do
  flags=()
  [ "$grain" = per-channel ] && flags=(--per-channel --axis '*=0')
  for threads in 1 2; do
    out="$work/scale_${grain}_$threads.qgan"
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$qgan" quantize "$model" -o "$out" \
      --method em --bits 2 --threads "$threads" "${flags[@]}" >/dev/null
    read -r seconds kib < "$work/time.txt"
    awk -v g="$grain" -v t="$threads" -v s="$seconds" -v k="$kib" -v l="$largest" 'BEGIN {
      printf "%-11s threads %d: %6.2f s, peak RSS %7.1f MB = %.2fx the largest tensor\n", g, t, s, k * 1024 / 1e6, k * 1024 / l }'
  done
  cmp "$work/scale_${grain}_1.qgan" "$work/scale_${grain}_2.qgan" && echo "$grain: 1 and 2 threads byte-identical"
done
