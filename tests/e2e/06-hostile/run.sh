#!/bin/bash
# 06-hostile: hostile byte streams against the iketcpd server while a tunnel
# is up and pinging. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

PREFIX_TIMEOUT=2
MAX_FRAME=4096

e2e_init
need_iketcpd

IKETCPD_SERVER_ARGS=(--prefix-timeout "${PREFIX_TIMEOUT}s" --max-frame "$MAX_FRAME")
setup_tcp_pair
initiate "$NS_C1" 30
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping before the hostile streams"

pinger_start bg "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 0.2
# The hostile client runs in c1 too (TCP passes the UDP block), as a third
# process beside the tunnel's own connection.
rc=0
timeout 120 ip netns exec "$NS_C1" python3 "$E2E_DIR/hostile.py" "$(gw_addr 1)" "$GW_TCP_PORT" \
	--prefix-timeout "$PREFIX_TIMEOUT" --max-frame "$MAX_FRAME" 2>&1 |
	tee "$RUN/hostile.out" || rc=$?
sleep 1 # one more probe after the last case
pinger_stop bg

iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
iketcpd_alive "$NS_C1" client || fail "iketcpd client died"
[ "$rc" -eq 0 ] || fail "hostile cases failed (see above)"
[ "$PING_RECV" -gt 0 ] || fail "the background ping got no answer"
[ "$PING_LOST" -eq 0 ] || fail "the tunnel lost $PING_LOST of $PING_SENT pings during the hostile streams"
sa_established "$NS_C1" || fail "initiator SA gone"
[ "$(swan "$NS_GW" --list-sas | grep -c ESTABLISHED)" -eq 1 ] ||
	fail "responder does not have exactly one established IKE SA"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping after the hostile streams"
log "PASS"
