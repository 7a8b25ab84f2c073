#!/usr/bin/env bash
# iperf3 through a real strongSwan tunnel (kernel-libipsec, ESP in user
# space on both ends), over plain UDP and over TCP through the iketcpd
# client + server, alternating, in one run (not a test).
#
# usage: bench/iperf-tunnel.sh [-t SECONDS] [-r ROUNDS] [-b BUILD_DIR]
#   -t S   iperf3 duration per run (default 10)
#   -r N   rounds; each round runs "udp" then "iketcpd" (default 3)
#   -b D   build directory with iketcpd (default build-bench)
#
# Each run builds fresh namespaces with tests/e2e/lib.sh (same topology as
# the end-to-end tests: one veth link, 2 CPUs shared by both hosts), brings
# the tunnel up, runs iperf3 -c from the client's inner address to the
# gateway's, and tears everything down. Prints one line per run and the
# median of each path with the ratio. Needs root.
set -u
# the gateways run as root without user (allow-root)
export IKETCPD_ALLOW_ROOT=1
cd "$(dirname "$0")/.."

if [ "${1:-}" = --one ]; then
	MODE=$2
	SECS=$3
	E2E_RESULTS=/dev/null
	# shellcheck source=../tests/e2e/lib.sh
	. tests/e2e/lib.sh
	e2e_init
	need_cmd iperf3
	if [ "$MODE" = udp ]; then
		topo_basic
		charon_start "$NS_GW" responder
		charon_start "$NS_C1" initiator remote="$(gw_addr 1)" rport=500 lport=500
	else
		need_iketcpd
		setup_tcp_pair
	fi
	initiate "$NS_C1" 30
	must_wait "sa_established $NS_GW" 10 "responder: SA established"
	ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping before iperf3"
	ip netns exec "$NS_GW" iperf3 -s -1 -B "$GW_INNER" >"$RUN/iperf3-server.out" 2>&1 &
	track_pid $!
	must_wait "[ -n \"\$(nsx $NS_GW ss -Hltn 'sport = :5201')\" ]" 10 "iperf3 server listening"
	timeout $((SECS + 30)) ip netns exec "$NS_C1" iperf3 -c "$GW_INNER" -B "$(inner_addr 1)" \
		-t "$SECS" -J >"$RUN/iperf3.json" || fail "iperf3 client failed"
	python3 - "$RUN/iperf3.json" "$MODE" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["end"]
print("RESULT path=%s receiver_mbps=%.1f sender_mbps=%.1f retransmits=%d" % (
    sys.argv[2], e["sum_received"]["bits_per_second"] / 1e6,
    e["sum_sent"]["bits_per_second"] / 1e6, e["sum_sent"].get("retransmits", 0)))
EOF
	exit 0
fi

SECS=10
ROUNDS=3
BUILD=build-bench
while getopts t:r:b:h o; do
	case $o in
	t) SECS=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	b) BUILD=$OPTARG ;;
	*) sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "iperf-tunnel: needs root" >&2; exit 2; }
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
export IKETCPD=$BUILD/iketcpd
[ -x "$IKETCPD" ] || { echo "iperf-tunnel: build $IKETCPD first" >&2; exit 2; }
echo "machine: $(nproc) CPU, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "strongSwan $(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null), iperf3 $SECS s per run, $ROUNDS rounds"
OUTS=$(mktemp)
trap 'rm -f "$OUTS"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
	for mode in udp iketcpd; do
		line=$("$0" --one "$mode" "$SECS" 2>"$OUTS.err" | grep '^RESULT') ||
			{ echo "run $r $mode failed:"; tail -20 "$OUTS.err"; exit 1; }
		echo "round $r: $line"
		echo "$line" >>"$OUTS"
	done
done
python3 - "$OUTS" <<'EOF'
import re, statistics, sys
runs = {}
for ln in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=(\S+)", ln))
    runs.setdefault(kv["path"], []).append(float(kv["receiver_mbps"]))
u, t = statistics.median(runs["udp"]), statistics.median(runs["iketcpd"])
print("median receiver Mbit/s: UDP %.1f, iketcpd (TCP) %.1f; iketcpd / UDP = %.2fx" % (u, t, t / u))
EOF
