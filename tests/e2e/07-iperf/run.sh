#!/bin/bash
# 07-iperf: iperf3 through the tunnel over TCP. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

SECS=${E2E_IPERF_SECONDS:-10}

e2e_init
need_iketcpd
need_cmd iperf3

setup_tcp_pair
initiate "$NS_C1" 30
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping before iperf3"

ip netns exec "$NS_GW" iperf3 -s -1 -B "$GW_INNER" >"$RUN/iperf3-server.out" 2>&1 &
track_pid $!
must_wait "[ -n \"\$(nsx $NS_GW ss -Hltn 'sport = :5201')\" ]" 10 "iperf3 server listening"

rc=0
timeout $((SECS + 30)) ip netns exec "$NS_C1" iperf3 -c "$GW_INNER" -B "$(inner_addr 1)" \
	-t "$SECS" -f m 2>&1 | tee "$RUN/iperf3-client.out" || rc=$?
[ "$rc" -eq 0 ] || fail "iperf3 client failed (exit $rc)"
# rate WHICH [retr]: the "N Xbits/sec" of the sender/receiver summary line
# (with "retr": the retransmit count that follows it on the sender line).
rate() {
	awk -v which="$1" -v retr="${2:-}" '$NF == which {
		for (i = 2; i <= NF; i++) if ($i ~ /bits\/sec$/) {
			if (retr != "") print $(i + 1); else print $(i - 1), $i
		}
	}' "$RUN/iperf3-client.out" | tail -n 1
}
snd=$(rate sender)
rcv=$(rate receiver)
retr=$(rate sender retr)
[ -n "$rcv" ] || fail "no receiver summary in the iperf3 output"
log "iperf3 ${SECS}s through the tunnel: sender $snd (retransmits ${retr:-?}), receiver $rcv"

u=$(udp_count "$NS_C1")
[ "$u" -eq 0 ] || fail "$u UDP packets tried to cross the link (expected 0)"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping after iperf3"
results_line "iperf3 TCP ${SECS}s, ESP over TCP via iketcpd (kernel-libipsec both ends," \
	"$(nproc) CPUs): sender $snd, receiver $rcv, retransmits ${retr:-?}"
log "PASS"
