#!/usr/bin/env bash
# Same results on every CPU: `qgan quantize` of the shipped generator with every method
# must write byte-identical .qgan files whichever kernel set runs and whatever the thread
# count: natively (widest set), forced to each set the CPU runs (QGAN_KERNELS), on 2
# threads (and on 1 natively and with SSE2), under `qemu-x86_64 -cpu Nehalem` (SSE4.2, no
# AVX) and, when the cross-built tool exists (scripts/ci-aarch64.sh), on aarch64 under
# qemu-aarch64 (NEON). Prints one digest per method and run; exits non-zero on the first
# difference. A copy of the generator with its weights scaled near 1e-41 (subnormal
# floats, fitted at a power-of-two scale by the library) runs too.
#   scripts/ci-same-bytes.sh [QGAN] [AARCH64_QGAN]
set -euo pipefail
cd "$(dirname "$0")/.."
qgan=${1:-build/examples/cli/qgan}
arm_qgan=${2:-build-aarch64/examples/cli/qgan}
input=examples/dcgan/weights/generator.safetensors
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
subnormal="$work/subnormal.safetensors"
/usr/bin/python3 scripts/scaled_model.py "$input" "$subnormal" -130
sets=$("$qgan" --version | sed -n 's/.*this CPU runs: \([^;]*\);.*/\1/p')
echo "kernel sets on this CPU: $sets"
runners=("native::")
image_runners=()
for set in $sets; do runners+=("QGAN_KERNELS=$set::"); done
runners+=("nehalem:qemu-x86_64 -cpu Nehalem:")
if [ -x "$arm_qgan" ]; then
  # qemu's default CPU dispatches to neon64_dotprod; the Cortex-A53 (no UDOT) to neon64,
  # whose only difference is the 8-bit tiles: it joins the image runs below.
  runners+=("aarch64:qemu-aarch64 -L /usr/aarch64-linux-gnu:$arm_qgan")
  image_runners+=("aarch64-a53:qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu:$arm_qgan")
else
  echo "no aarch64 build at $arm_qgan: aarch64 skipped"
fi
# Runs the tool of a runner ("label:emulator:binary"), forcing the kernel set its label
# names, with the remaining arguments.
run_tool() {
  local label emulator binary
  IFS=: read -r label emulator binary <<< "$1"
  shift
  local env_set=()
  [[ $label == QGAN_KERNELS=* ]] && env_set=("$label")
  # shellcheck disable=SC2086  # the emulator is a command and its flags
  env "${env_set[@]}" $emulator "${binary:-$qgan}" "$@"
}

configs=("G em 2 --per-channel" "G em+ 2 --per-channel" "G minmax 3 --per-channel" "G lloyd 2 --per-channel"
         "G em 4" "G em+ 1" "G log 3 --per-channel" "G tanh 2 --per-channel"
         "subnormal em+ 4 --per-channel" "subnormal lloyd 2")
# quantize CONFIG_INDEX RUNNER THREADS OUT
quantize() {
  local model method bits grain model_file
  read -r model method bits grain <<< "${configs[$1]}"
  model_file=$input
  [ "$model" = subnormal ] && model_file=$subnormal
  # shellcheck disable=SC2086  # grain is empty or one flag
  run_tool "$2" quantize "$model_file" -o "$4" --method "$method" --bits "$bits" ${grain:-} --arch dcgan \
    --threads "$3" >/dev/null
}
# describe CONFIG_INDEX LABEL THREADS DIGEST
describe() {
  local model method bits grain
  read -r model method bits grain <<< "${configs[$1]}"
  printf "%-9s %-7s %d bits %-13s %-26s threads %d: %s\n" "$model" "$method" "$bits" "${grain:---per-tensor}" "$2" "$3" "$4"
}

# The aarch64 runs are the longest (Lloyd-Max fits one tensor per thread under qemu: a
# core for 15 s and more): they go in the background, one after another, beside everything
# else, and are compared at the end.
arm_runner=""
x86_runners=()
for runner in "${runners[@]}"; do
  if [[ $runner == aarch64:* ]]; then arm_runner=$runner; else x86_runners+=("$runner"); fi
done
arm_pid=""
if [ -n "$arm_runner" ]; then
  (for i in "${!configs[@]}"; do quantize "$i" "$arm_runner" 2 "$work/arm_$i.qgan"; done) &
  arm_pid=$!
fi

status=0
references=()
for i in "${!configs[@]}"; do
  reference=""
  for runner in "${x86_runners[@]}"; do
    IFS=: read -r label _ _ <<< "$runner"
    # 1 and 2 threads on the widest set (native) and the narrowest (SSE2); the sets
    # between and the emulated runs (10-50x slower) take 2 only.
    thread_counts=(2)
    [[ $label == native || $label == QGAN_KERNELS=sse2 ]] && thread_counts=(1 2)
    for threads in "${thread_counts[@]}"; do
      quantize "$i" "$runner" "$threads" "$work/out.qgan"
      digest=$(sha256sum "$work/out.qgan" | cut -c1-16)
      describe "$i" "$label" "$threads" "$digest"
      if [ -z "$reference" ]; then reference=$digest
      elif [ "$digest" != "$reference" ]; then echo "DIFFERS from $reference"; status=1; fi
    done
  done
  references[i]=$reference
done

# Images: qgan sample through the packed layers must give the same floats on every runner:
# 8-bit activations (a calibrated W2 model; the scalar and SSE sets run the reference
# tiles, AVX2, AVX-512 and both NEON sets their own), fp32 activations on a codebook (Lloyd-Max 3-bit:
# level tables), and the fp32 model (fp32 tiles on floats).
# Recalibration (its Hessians and forward passes are Eigen, compiled with the tool's own
# flags) gives the same file whichever kernel set the tool dispatches to. Not run under
# emulation: its ~20 GFLOP of double-precision algebra take minutes under qemu, the
# Nehalem run would execute the same code as QGAN_KERNELS=sse4_2 here, and aarch64's
# Eigen rounds its products differently (docs/recalibration.md).
reference=""
for runner in "${runners[@]}"; do
  IFS=: read -r label emulator _ <<< "$runner"
  [ -n "$emulator" ] && continue
  run_tool "$runner" quantize "$input" -o "$work/r.qgan" --method em --bits 2 --per-channel --arch dcgan \
    --threads 2 --recalibrate bn,bias,rounding --calib-samples 32 > /dev/null
  digest=$(sha256sum "$work/r.qgan" | cut -c1-16)
  printf "recalibrated em 2 bits (32 latents)  %-26s: %s\n" "$label" "$digest"
  if [ -z "$reference" ]; then reference=$digest
  elif [ "$digest" != "$reference" ]; then echo "DIFFERS from $reference"; status=1; fi
done

"$qgan" quantize "$input" -o "$work/w2.qgan" --method em --bits 2 --per-channel --arch dcgan > /dev/null
"$qgan" calibrate "$work/w2.qgan" --arch dcgan -o "$work/w2a8.qgan" --samples 256 > /dev/null
"$qgan" quantize "$input" -o "$work/l3.qgan" --method lloyd --bits 3 --per-channel --arch dcgan > /dev/null
for config in "$work/w2a8.qgan int8" "$work/l3.qgan fp32" "$input fp32"; do
  read -r model act <<< "$config"
  reference=""
  for runner in "${runners[@]}" "${image_runners[@]}"; do
    label=${runner%%:*}
    run_tool "$runner" sample "$model" --arch dcgan --act "$act" --threads 2 -n 8 --seed 5 \
      -o "$work/grid.png" --raw "$work/images.f32" > /dev/null
    digest=$(sha256sum "$work/images.f32" | cut -c1-16)
    printf "sample %-22s --act %-4s %-26s: %s\n" "$(basename "$model")" "$act" "$label" "$digest"
    if [ -z "$reference" ]; then reference=$digest
    elif [ "$digest" != "$reference" ]; then echo "DIFFERS from $reference"; status=1; fi
  done
done
# The aarch64 quantize runs, started at the top.
if [ -n "$arm_pid" ]; then
  if ! wait "$arm_pid"; then echo "an aarch64 quantize run FAILED"; status=1; fi
  for i in "${!configs[@]}"; do
    [ -s "$work/arm_$i.qgan" ] || continue
    digest=$(sha256sum "$work/arm_$i.qgan" | cut -c1-16)
    describe "$i" "${arm_runner%%:*}" 2 "$digest"
    if [ "$digest" != "${references[i]}" ]; then echo "DIFFERS from ${references[i]}"; status=1; fi
  done
fi
exit "$status"
