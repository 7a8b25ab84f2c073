#!/bin/bash
# 15-responder-rekey: the responder rekeys the IKE SA (it becomes the IKE
# initiator of the new SA), then the TCP connection breaks: only the original
# initiator's side dials again (R1). See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

IKE_REKEY=${E2E_IKE_REKEY:-12}
MAX_RECOVERY_MS=5000

e2e_init
need_iketcpd

# Short IKE lifetime on the responder only: every IKE rekey is the
# responder's, so the new IKE SA's initiator is the gateway host.
setup_tcp_pair -- ike_rekey="$IKE_REKEY"
# SYNs on the client link by direction: a SYN arriving at c1 would be the
# server side dialling (the TR never connects, R1, F5).
nsx "$NS_C1" nft add counter inet e2e syn_in
nsx "$NS_C1" nft add counter inet e2e syn_out
nsx "$NS_C1" nft add rule inet e2e count_in iifname eth0 'tcp flags & (syn | ack) == syn' counter name syn_in
nsx "$NS_C1" nft add rule inet e2e count_out oifname eth0 'tcp flags & (syn | ack) == syn' counter name syn_out

initiate "$NS_C1" 30
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping before the rekey"
first=$(ike_spis "$NS_C1")
log "IKE SA before: $first"

# local_role NS: "i" or "r", the side of the current IKE SA that NS has
# (swanctl marks the local SPI with '*': SPI_i* or SPI_r*).
local_role() {
	swan "$1" --list-sas --ike e2e 2>/dev/null |
		sed -n 's/^e2e: #[0-9]*, ESTABLISHED.*[0-9a-f]_\([ir]\)\*.*/\1/p' | head -n 1
}

must_wait "[ \"\$(ike_spis $NS_C1)\" != \"$first\" ] && [ \"\$(local_role $NS_C1)\" = r ] && sa_established $NS_C1" \
	$((IKE_REKEY + 20)) "IKE SA rekeyed by the responder (c1 is now the IKE responder)"
rekeyed=$(ike_spis "$NS_C1")
log "IKE SA after the responder's rekey: $rekeyed (c1: $(local_role "$NS_C1"), gw: $(local_role "$NS_GW"))"
[ "$(local_role "$NS_GW")" = i ] || fail "the gateway host is not the IKE initiator of the rekeyed SA"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping after the responder's rekey"

# Break the connection from the server's end (RST to the client).
conns_before=$(nft_count "$NS_C1" syn_out)
t_kill=$(now_ms)
nsx "$NS_GW" ss -K -t state established "( sport = :$GW_TCP_PORT )" >/dev/null
log "killed the server's TCP connection (ss -K in gw)"
ping_recovery "$NS_C1" "$(inner_addr 1)" "$GW_INNER" "$t_kill" "$MAX_RECOVERY_MS" ||
	fail "no ping answered within ${MAX_RECOVERY_MS} ms after the kill"
log "ping recovered after $RECOVERED ms"
[ "$(nft_count "$NS_C1" syn_out)" -gt "$conns_before" ] || fail "the client did not dial again"

# The responder keeps initiating IKE exchanges on the SA it created: its
# next rekey must reach the initiator over the client's new connection.
must_wait "[ \"\$(ike_spis $NS_C1)\" != \"$rekeyed\" ] && sa_established $NS_C1" \
	$((IKE_REKEY + 20)) "second responder rekey, after the reconnect"
log "IKE SA after the second rekey: $(ike_spis "$NS_C1")"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping after the second rekey"

n=$(nft_count "$NS_C1" syn_in)
[ "$n" -eq 0 ] || fail "$n SYNs arrived at the client: the gateway side dialled (R1)"
n=$(nsx "$NS_GW" ss -Htn state established "( dport = :$GW_TCP_PORT )" | wc -l)
[ "$n" -eq 0 ] || fail "the gateway host has $n outgoing connections to port $GW_TCP_PORT"
[ "$(tcp4500_conns "$NS_C1")" -eq 1 ] || fail "expected exactly one TCP connection from c1 at the end"
n=$(udp_count "$NS_C1")
[ "$n" -eq 0 ] || fail "$n UDP packets tried to cross the link (expected 0)"
log "SYNs from c1: $(nft_count "$NS_C1" syn_out), SYNs to c1: $(nft_count "$NS_C1" syn_in)"
results_line "responder rekey: recovery after ss -K in gw ${RECOVERED} ms, second rekey through the new connection"
log "PASS"
