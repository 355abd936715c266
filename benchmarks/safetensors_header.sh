#!/usr/bin/env bash
# Header parsing at scale: `qgan info` on safetensors files whose header holds N one-element
# tensors (10k, 20k, 100k, and 1.4M, about the format's 100 MB header limit) or nests
# {"a":{"a":...}} or __metadata__ objects 20 MB and 100 MB deep, printing wall time and
# peak RSS (GNU time) of each. Linear parsing shows as time growing with N, not N^2; the
# nested files are refused at their first bytes. Files are generated, not committed.
#   benchmarks/safetensors_header.sh [WORKDIR]   (default: a fresh directory under /tmp;
#                                                   needs about 400 MB)
# QGAN=path/to/qgan picks another build of the tool.
set -euo pipefail
cd "$(dirname "$0")/.."
qgan=${QGAN:-build/examples/cli/qgan}
test -x "$qgan" || { echo "build first (scripts/build.sh) or set QGAN"; exit 1; }
work=${1:-$(mktemp -d)}
mkdir -p "$work"
lscpu | grep -E "^Model name" || true

# generate KIND N FILE: KIND tensors (N of them), nested or metadata (N header bytes).
generate() {
  /usr/bin/python3 - "$@" <<'EOF'
import struct, sys
kind, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = b""
if kind == "tensors":
    header = "{" + ",".join('"t%d":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}'
                            % (i, 4 * i, 4 * i + 4) for i in range(n)) + "}"
    data = bytes(4 * n)
elif kind == "nested":
    levels = (n - 2) // 6
    header = "{" + '"a":{' * levels + "}" * levels + "}"
else:
    levels = (n - 18) // 6
    header = '{"__metadata__":' + '{"a":' * levels + "{}" + "}" * levels + "}"
raw = header.encode()
raw += b" " * (-len(raw) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(raw)) + raw + data)
EOF
}

run() {
  local file=$1
  local status=0
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$qgan" info "$file" > "$work/out.txt" 2> "$work/err.txt" ||
    status=$?
  # GNU time puts "Command exited with non-zero status N" before its figures.
  read -r seconds kib < <(tail -n 1 "$work/time.txt")
  printf "%-28s %10d header bytes: %6.2f s, peak RSS %7.1f MB, exit %d %s\n" "$(basename "$file")" \
    "$(od -An -t u8 -N 8 "$file" | tr -d ' ')" "$seconds" "$(echo "$kib / 1024" | bc -l)" "$status" \
    "$(head -c 100 "$work/err.txt" | tr '\n' ' ')"
}

for n in 10000 20000 100000 1400000; do
  [ -s "$work/tensors_$n.safetensors" ] || generate tensors "$n" "$work/tensors_$n.safetensors"
  run "$work/tensors_$n.safetensors"
done
for kind in nested metadata; do
  for bytes in 20000000 100000000; do
    [ -s "$work/${kind}_$bytes.safetensors" ] || generate "$kind" "$bytes" "$work/${kind}_$bytes.safetensors"
    run "$work/${kind}_$bytes.safetensors"
  done
done
