#!/usr/bin/env bash
# iketcpd server alone with 1 and with N workers, side by side (not a test).
#
# bench/wkload.c plays the clients (connections from several source
# addresses 127.0.0.2.., so that the workers share them) and the backend:
#   stream S   one connection per source address, one IKE session each, ESP
#              frames of S bytes as fast as TCP takes them; counted: the
#              datagrams the backend receives
#   connect    2 threads open connections round-robin over the addresses,
#              each sends the prefix and an IKE_SA_INIT with a new SPI and
#              closes; counted: the IKE_SA_INITs the backend receives (one
#              per new connection and session)
# For each, the server's CPU time (supervisor and workers, utime + stime)
# over the measured window gives the CPU cost per datagram or connection.
# Prints markdown tables with the ratio N workers / 1 worker.
#
# usage: bench/workers-bench.sh [-b BUILD] [-d SECONDS] [-w "1 2"] [--port P]
#        [--sources N] [--rounds R]
# Run it under flock /tmp/iketcp-bench.lock on a shared machine.
set -u

BUILD=build-bench
DUR=3
WORKERS="1 2"
PORT=25500
NSRC=8
ROUNDS=1
while [ $# -gt 0 ]; do
	case "$1" in
	-b) BUILD=$2; shift ;;
	-d) DUR=$2; shift ;;
	-w) WORKERS=$2; shift ;;
	--port) PORT=$2; shift ;;
	--sources) NSRC=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	*) echo "usage: $0 [-b BUILD] [-d S] [-w \"1 2\"] [--port P] [--sources N] [--rounds R]" >&2
	   exit 2 ;;
	esac
	shift
done
IKETCPD=$BUILD/iketcpd
WKLOAD=$BUILD/wkload
[ -x "$IKETCPD" ] && [ -x "$WKLOAD" ] || { echo "build $BUILD first (iketcpd, wkload)" >&2; exit 2; }
OUT=$(mktemp -d /tmp/workers-bench.XXXXXX)
SRCS=$(seq -s, -f "127.0.0.%g" 2 $((NSRC + 1)))
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

echo "# workers-bench: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "# command: $0 -b $BUILD -d $DUR -w \"$WORKERS\" --port $PORT --sources $NSRC --rounds $ROUNDS"
echo "# iketcpd $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null), sources $SRCS, output $OUT"

start_server() { # workers
	local w=$1 conf=$OUT/w$1.conf
	cat >"$conf" <<EOF
workers = $w
stats-socket = $OUT/stats.sock
[server gw]
listen = 127.0.0.1:$PORT
backend = 127.0.0.1:$((PORT + 1))
max-conns = 4096
max-conns-per-source = 4096
max-pending = 4096
max-pending-per-source = 4096
max-sessions = 6000
max-sessions-per-source = 6000
max-half-open = 6000
max-half-open-per-source = 6000
half-open-timeout = 500ms
session-timeout = 500ms
EOF
	IKETCPD_ALLOW_ROOT=1 "$IKETCPD" -f -c "$conf" 2>"$OUT/iketcpd-w$w.log" &
	PID=$!
	for _ in $(seq 100); do
		if [ "$w" = 1 ] && grep -q "running" "$OUT/iketcpd-w$w.log"; then break; fi
		if grep -q "all $w workers ready" "$OUT/iketcpd-w$w.log"; then break; fi
		sleep 0.05
	done
}

stop_server() {
	kill "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	PID=
}

pids_of() { echo "$PID$(pgrep -P "$PID" | sed 's/^/,/' | tr -d '\n')"; }

declare -A RES
SCEN="stream1400 stream64 connect"
for r in $(seq "$ROUNDS"); do
	for s in $SCEN; do
		for w in $WORKERS; do
			start_server "$w"
			case $s in
			stream*) args=(stream --conns 1 --size "${s#stream}") ;;
			connect) args=(connect --threads 2) ;;
			esac
			line=$("$WKLOAD" "${args[@]}" --server "$PORT" --backend $((PORT + 1)) \
				--sources "$SRCS" --pids "$(pids_of)" --seconds "$DUR")
			stop_server
			echo "round $r $s workers=$w: $line"
			RES[$r,$s,$w]=$line
		done
	done
done

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

echo
printf "| round | load | workers | delivered/s | server cores | CPU ns per item | generator CPU s | ratio to 1 worker |\n"
printf "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
for r in $(seq "$ROUNDS"); do
	for s in $SCEN; do
		base=
		for w in $WORKERS; do
			l=${RES[$r,$s,$w]}
			rate=$(field rate "$l")
			[ -z "$base" ] && base=$rate
			ratio=$(awk -v a="$rate" -v b="$base" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
			printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$r" "$s" "$w" "$rate" \
				"$(field server_cores "$l")" "$(field ns_per_item "$l")" \
				"$(field gen_cpu_s "$l")" "$ratio"
		done
	done
done
