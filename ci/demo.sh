#!/usr/bin/env bash
# The README's "main job": install what is needed, build, and run the demo.
# For now the demo encodes an RFC 9329 stream, parses it back in odd-sized
# chunks and shows the send queue letting IKE overtake ESP.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in build-essential cmake pkg-config; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi

cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DIKETCP_TESTS=OFF -DIKETCP_BENCH=OFF >/dev/null
cmake --build build/demo -j"$(nproc)" >/dev/null
exec ./build/demo/iketcp demo
