#!/bin/bash
# 03-reconnect: the TCP connection is killed; the tunnel recovers. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

ROUNDS=${E2E_RECONNECT_ROUNDS:-3}
MAX_RECOVERY_MS=5000

e2e_init
need_iketcpd

setup_tcp_pair # mobike left at strongSwan's default (yes)
initiate "$NS_C1" 30
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping before the reconnects"
spis_before=$(ike_spis "$NS_C1")
child_before=$(child_spis "$NS_C1")

# conn_sport NS: source port of the established connection to :4500.
conn_sport() {
	nsx "$1" ss -Htn state established "( dport = :$GW_TCP_PORT )" |
		awk 'NR == 1 {n = split($3, a, ":"); print a[n]}'
}

pinger_start bg "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 0.2
worst=0
all=""
for r in $(seq "$ROUNDS"); do
	old=$(conn_sport "$NS_C1")
	[ -n "$old" ] || fail "round $r: no TCP connection to $GW_TCP_PORT before the kill"
	t_kill=$(now_ms)
	nsx "$NS_C1" ss -K -t state established "( dport = :$GW_TCP_PORT )" >/dev/null
	log "round $r: killed the TCP connection from port $old (ss -K)"
	# Recovery = first answered ping after the kill; each probe waits 0.5 s.
	ping_recovery "$NS_C1" "$(inner_addr 1)" "$GW_INNER" "$t_kill" "$MAX_RECOVERY_MS" ||
		fail "round $r: no ping answered within ${MAX_RECOVERY_MS} ms after the kill"
	recovered=$RECOVERED
	new=$(conn_sport "$NS_C1")
	log "round $r: ping recovered after ${recovered} ms; new connection from port ${new:-?}"
	{ [ -n "$new" ] && [ "$new" != "$old" ]; } || fail "round $r: no new TCP connection (old port $old, now '${new}')"
	[ "$recovered" -gt "$worst" ] && worst=$recovered
	all="$all $recovered"
	ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "round $r: ping after the reconnect"
done
pinger_stop bg

# The SAs survived (RFC 9329 6.1: state is kept across a lost connection);
# nothing was renegotiated and nothing went over UDP.
[ "$(ike_spis "$NS_C1")" = "$spis_before" ] ||
	fail "IKE SA changed: before '$spis_before', after '$(ike_spis "$NS_C1")'"
[ "$(child_spis "$NS_C1")" = "$child_before" ] ||
	fail "CHILD SA changed: before '${child_before//$'\n'/ }', after '$(child_spis "$NS_C1" | tr '\n' ' ')'"
n=$(udp_count "$NS_C1")
[ "$n" -eq 0 ] || fail "$n UDP packets tried to cross the link (expected 0)"
[ "$(tcp4500_conns "$NS_C1")" -eq 1 ] || fail "expected exactly 1 TCP connection at the end"
sa_established "$NS_GW" || fail "responder SA gone"
log "recovery times (ms):$all; worst $worst ms; background ping lost $PING_LOST of $PING_SENT"
results_line "reconnect after ss -K: recovery ms$all (worst $worst), ping lost $PING_LOST/$PING_SENT"
log "PASS"
