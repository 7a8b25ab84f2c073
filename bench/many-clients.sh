#!/usr/bin/env bash
# Many clients on one iketcpd server, on loopback (not a test; issue #13).
#
# Two runs, each against a fresh `iketcpd server` with bench/connload.c as
# all the clients and as the server's backend:
#   plain  connect rate, idle RSS per connection, shared flood (K = 1 and
#          K = 1000 active connections, fixed aggregate rate and flat out)
#   tls    the same server on --listen-tls: connect rate and idle RSS
# Method and results: docs/performance.md, "Many clients (issue #13)".
# Builds nothing: build first with
#   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DIKETCP_TESTS=OFF
#   cmake --build build-bench -j2
#
# usage: flock /tmp/iketcp-bench.lock bench/many-clients.sh [options]
#   -b DIR          build directory with iketcpd and connload (build-bench)
#   -n N            connections (10000; fewer when RLIMIT_NOFILE's hard limit
#                   cannot give the server 2 descriptors per connection)
#   --sources S     client source addresses 127.1.0.1.. (default N: one each)
#   --inflight M    connections between connect() and answer at once (1000)
#   --flood-k LIST  active connections per flood run ("1 1000")
#   --rate PPS      aggregate fixed rate of the flood (50000)
#   --size B        ESP datagram size (1400)
#   -d S            measured seconds per flood run (3)
#   --port P        server port; P+1 backend, P+2 TLS listener (23400)
#   --no-tls        skip the TLS run
#   --no-pin        do not pin (default: server on CPU 1, connload on CPU 0)
#   -o DIR          logs and results (default: a new /tmp/many-clients.XXXXXX)
#
# Server limits: the per-source ones (max-conns-per-source 64,
# max-pending-per-source 16, max-half-open-per-source 16,
# max-sessions-per-source 64) stay at their defaults: every connection comes
# from its own 127.1.x.y address, as many clients would (with --sources < N
# they are raised as well). Only the totals are raised on the command line,
# to N + 1024: max-conns, max-sessions, max-pending, max-half-open (defaults
# 4096, 8192, 256, 1024).
#
# Every process this script starts is stopped by PID on exit (SIGTERM, then
# SIGKILL after 3 s).
set -u

BUILD=build-bench
N=10000
SOURCES=
INFLIGHT=1000
FLOODK="1 1000"
RATE=50000
SIZE=1400
DUR=3
PORT=23400
TLS=1
PIN=1
OUT=

die() {
	echo "many-clients: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	-b) BUILD=$2; shift ;;
	-n) N=$2; shift ;;
	--sources) SOURCES=$2; shift ;;
	--inflight) INFLIGHT=$2; shift ;;
	--flood-k) FLOODK=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--size) SIZE=$2; shift ;;
	-d) DUR=$2; shift ;;
	--port) PORT=$2; shift ;;
	--no-tls) TLS=0 ;;
	--no-pin) PIN=0 ;;
	-o) OUT=$2; shift ;;
	-h | --help)
		sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option $1 (-h lists them)" ;;
	esac
	shift
done

IKETCPD=$BUILD/iketcpd
CONNLOAD=$BUILD/connload
[ -x "$IKETCPD" ] || die "$IKETCPD missing: build first (see -h)"
[ -x "$CONNLOAD" ] || die "$CONNLOAD missing: build first (see -h)"
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/many-clients.XXXXXX)
mkdir -p "$OUT"
export IKETCPD_ALLOW_ROOT=1

# The server needs a descriptor per connection and one per session (its
# backend socket), plus what iketcpd reserves (64 and the listeners): it
# refuses to start with limits it cannot have descriptors for, and only
# CAP_SYS_RESOURCE may raise the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ]; then
	MAXN=$(((HARD - 64 - 16) / 2 - 8))
	if [ "$N" -gt "$MAXN" ]; then
		echo "many-clients: RLIMIT_NOFILE hard limit $HARD gives the server 2 descriptors for at most $MAXN connections: N lowered from $N to $MAXN" >&2
		N=$MAXN
	fi
fi
[ -n "$SOURCES" ] || SOURCES=$N
LIM=$((N + 1024))
if [ "$HARD" != unlimited ] && [ $((2 * LIM + 80)) -gt "$HARD" ]; then
	LIM=$(((HARD - 80) / 2))
fi

# Fewer source addresses than clients (--sources): several clients share one,
# as behind a NAT, and the per-source budgets would refuse them; they are
# then raised too, and the notes say so.
PERSRC=()
PERSRC_NOTE="per-source limits at defaults (one source address per connection)"
if [ "$SOURCES" -lt "$N" ]; then
	PERSRC=(--max-conns-per-source "$LIM" --max-sessions-per-source "$LIM"
		--max-pending-per-source "$LIM" --max-half-open-per-source "$LIM")
	PERSRC_NOTE="per-source limits raised to $LIM too ($SOURCES sources for $N connections)"
fi

SRV_CPU=()
GEN_CPU=()
GEN_PIN=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
	SRV_CPU=(taskset -c 1)
	GEN_CPU=(taskset -c 0)
	GEN_PIN=(--cpu 0 --backend-cpu 0)
fi

PIDS=()
cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 30); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	PIDS=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

stop_pid() {
	local p=$1 keep=()
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
	PIDS=("${keep[@]}")
}

# listening PORT: the server is up
wait_listen() {
	for _ in $(seq 50); do
		ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

{
	echo "many-clients $(date -u +%Y-%m-%dT%H:%M:%SZ), output in $OUT"
	echo "machine: $(nproc) CPU ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), kernel $(uname -r)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "connections N=$N from $SOURCES source addresses, $INFLIGHT in flight; flood K=\"$FLOODK\" at $RATE/s and flat out, $SIZE B, ${DUR}s each"
	echo "server totals raised to $LIM: max-conns max-sessions max-pending max-half-open; $PERSRC_NOTE"
	echo "RLIMIT_NOFILE hard $HARD; pinning: server on CPU ${SRV_CPU[2]:-any}, connload on CPU ${GEN_CPU[2]:-any}"
	echo "busiest other processes:"
	ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -4 | sed 's/^/  /'
} | tee "$OUT/machine.txt" >&2

if [ "$TLS" = 1 ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$OUT/key.pem" -out "$OUT/cert.pem" -days 2 -subj /CN=gw.test \
		>/dev/null 2>&1 || die "openssl req failed"
fi

# run NAME TLS PHASES
run() {
	local name=$1 tls=$2 phases=$3 listen=(--listen "127.0.0.1:$PORT") gen_tls=() sport=$PORT
	if [ "$tls" = 1 ]; then
		sport=$((PORT + 2))
		listen=(--listen "127.0.0.1:$PORT" --listen-tls "127.0.0.1:$sport"
			--tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem")
		gen_tls=(--tls)
	fi
	"${SRV_CPU[@]}" "$IKETCPD" -f server "${listen[@]}" --backend "127.0.0.1:$((PORT + 1))" \
		--max-conns "$LIM" --max-sessions "$LIM" --max-pending "$LIM" \
		--max-half-open "$LIM" "${PERSRC[@]}" 2>"$OUT/iketcpd-$name.log" &
	local spid=$!
	PIDS+=("$spid")
	wait_listen "$sport" || die "iketcpd did not listen on $sport (see $OUT/iketcpd-$name.log)"
	"${GEN_CPU[@]}" "$CONNLOAD" --server "127.0.0.1:$sport" --backend "127.0.0.1:$((PORT + 1))" \
		--pid "$spid" -n "$N" --sources "$SOURCES" --inflight "$INFLIGHT" "${gen_tls[@]}" \
		--phases "$phases" --flood-k "$FLOODK" --rate "$RATE" --size "$SIZE" -d "$DUR" \
		--label "$name" "${GEN_PIN[@]}" 2>"$OUT/connload-$name.txt" | tee -a "$OUT/results.txt"
	local rc=${PIPESTATUS[0]}
	cat "$OUT/connload-$name.txt" >&2
	stop_pid "$spid"
	[ "$rc" = 0 ] || echo "many-clients: connload $name exited $rc" >&2
}

run plain 0 "connect idle flood"
[ "$TLS" = 1 ] && run tls 1 "connect idle"

# ---- summary -------------------------------------------------------------------
field() { sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p" <<<"$1"; }
{
	echo
	echo "| figure | plain | TLS | goal |"
	echo "|---|---:|---:|---|"
	P=$(grep 'phase=connect label=plain' "$OUT/results.txt")
	T=$(grep 'phase=connect label=tls' "$OUT/results.txt")
	echo "| connections established (failed) | $(field "$P" established) ($(field "$P" failed)) | $(field "$T" established) ($(field "$T" failed)) | $N |"
	echo "| new connections/s with IKE_SA_INIT relayed | $(field "$P" conn_per_s) | $(field "$T" conn_per_s) | ≥ 5000 (plain) |"
	echo "| connect → IKE_SA_INIT answer p50 / p99 µs | $(field "$P" p50_us) / $(field "$P" p99_us) | $(field "$T" p50_us) / $(field "$T" p99_us) | |"
	P=$(grep 'phase=idle label=plain' "$OUT/results.txt")
	T=$(grep 'phase=idle label=tls' "$OUT/results.txt")
	echo "| idle RSS per connection KiB | $(field "$P" kib_per_conn) | $(field "$T" kib_per_conn) | ≤ 8 (plain) |"
	echo "| server RSS before / after KiB | $(field "$P" rss_before_kib) / $(field "$P" rss_after_kib) | $(field "$T" rss_before_kib) / $(field "$T" rss_after_kib) | |"
	for load in fixed flat; do
		R=$(grep "phase=flood-ratio label=plain load=$load" "$OUT/results.txt")
		[ -n "$R" ] && echo "| flood $load: delivered/s K=$(field "$R" k_to) / K=$(field "$R" k_from) | $(field "$R" delivered_ratio) | – | ≥ 0.90 |"
	done
	echo
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$OUT/summary.txt" >&2
