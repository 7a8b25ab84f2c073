#!/bin/bash
# 13-per-client-source: half-open SAs of one TCP client must not trip
# strongSwan's per-address limits for the others. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

N_HALF_OPEN=6 # one more than charon's default block_threshold (5)

e2e_init
need_iketcpd

setup_tcp_pair
topo_client 2
must_wait "nsx $(ns_of c2) ping -c1 -W1 $(gw_addr 2)" 10 "link c2 -> gw"

# The attacker's connections stay open until the cleanup kills it.
ip netns exec "$(ns_of c2)" python3 "$E2E_DIR/half_open.py" "$(gw_addr 2)" \
	"$GW_TCP_PORT" "$N_HALF_OPEN" 120 >"$RUN/half_open.out" 2>&1 &
track_pid $!
must_wait "grep -q 'IKE_SA_INITs accepted' $RUN/half_open.out" 15 "the attacker's IKE_SA_INITs"
cat "$RUN/half_open.out"
# charon ignores the attacker's IKE_SA_INITs past block_threshold (5): at
# least 5 accepted means the attacker's address is now blocked.
n=$(sed -n 's/^half_open: \([0-9]*\) of .*/\1/p' "$RUN/half_open.out")
[ "${n:-0}" -ge 5 ] || fail "the responder accepted only ${n:-0} IKE_SA_INITs of the attacker"
n=$(swan "$NS_GW" --list-sas | grep -c CONNECTING || true)
log "responder: $n half-open IKE SAs"
[ "$n" -ge 5 ] || fail "expected at least 5 half-open IKE SAs at the responder, found $n"

initiate "$NS_C1" 20
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping through the tunnel"
n=$(swan "$NS_GW" --list-sas | grep -c CONNECTING || true)
[ "$n" -ge 5 ] || fail "the attacker's half-open SAs are gone ($n): the test proved nothing"
iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
results_line "per-client source: a tunnel came up beside $N_HALF_OPEN half-open SAs of another client"
log "PASS"
