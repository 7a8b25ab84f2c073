#!/bin/bash
# 02-rekey: CHILD_SA and IKE_SA rekeys over TCP under traffic. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

CHILD_REKEY=${E2E_CHILD_REKEY:-20}
IKE_REKEY=${E2E_IKE_REKEY:-30}
DURATION=${E2E_REKEY_DURATION:-45}
MAX_LOSS_PCT=10

e2e_init
need_iketcpd

# Short lifetimes on the initiator only, so that it does every rekey.
setup_tcp_pair ike_rekey="$IKE_REKEY" child_rekey="$CHILD_REKEY"
initiate "$NS_C1" 30
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping before the rekeys"

declare -A seen_child=() seen_ike=()
record_spis() {
	local s
	for s in $(child_spis "$NS_C1" | awk '$1 == "in" {print $2}'); do
		seen_child[$s]=1
	done
	for s in $(ike_spis "$NS_C1" | awk '{print $1}'); do
		seen_ike[$s]=1
	done
}
record_spis
log "start: IKE SPIs $(ike_spis "$NS_C1" | tr '\n' ' '), CHILD SPIs $(child_spis "$NS_C1" | tr '\n' ' ')"

pinger_start rekey "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 0.2
log "continuous ping for ${DURATION}s (CHILD rekey every ${CHILD_REKEY}s, IKE every ${IKE_REKEY}s)"
end=$(($(now_ms) + DURATION * 1000))
while [ "$(now_ms)" -lt "$end" ]; do
	record_spis
	charon_alive "$NS_C1" || fail "initiator charon died"
	charon_alive "$NS_GW" || fail "responder charon died"
	iketcpd_alive "$NS_C1" client || fail "iketcpd client died"
	iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
	sleep 1
done
pinger_stop rekey
record_spis
log "end: IKE SPIs $(ike_spis "$NS_C1" | tr '\n' ' '), CHILD SPIs $(child_spis "$NS_C1" | tr '\n' ' ')"
log "distinct inbound CHILD SPIs seen: ${#seen_child[@]} (${!seen_child[*]})"
log "distinct IKE SPIs (initiator's) seen: ${#seen_ike[@]} (${!seen_ike[*]})"

clog=$(dir_of "$NS_C1")/charon.log
log "initiator log: $(grep -c 'IKE_SA e2e\[[0-9]*\] rekeyed' "$clog" || true) IKE rekeys," \
	"$(grep -c 'CHILD_REKEY task' "$clog" || true) CHILD_REKEY task lines"

expect_child=$((DURATION / CHILD_REKEY + 1))
expect_ike=$((DURATION / IKE_REKEY + 1))
[ "${#seen_child[@]}" -ge "$expect_child" ] ||
	fail "CHILD_SA rekeys: saw ${#seen_child[@]} inbound SPIs, expected >= $expect_child"
[ "${#seen_ike[@]}" -ge "$expect_ike" ] ||
	fail "IKE_SA rekeys: saw ${#seen_ike[@]} IKE SPIs, expected >= $expect_ike"
sa_established "$NS_C1" || fail "initiator SA not established after the rekeys"
sa_established "$NS_GW" || fail "responder SA not established after the rekeys"

[ "$PING_SENT" -gt 0 ] || fail "the continuous ping sent nothing"
loss_pct=$((100 * PING_LOST / PING_SENT))
log "ping loss during the rekeys: $PING_LOST of $PING_SENT (${loss_pct}%)"
[ "$loss_pct" -lt "$MAX_LOSS_PCT" ] || fail "ping loss ${loss_pct}% >= ${MAX_LOSS_PCT}%"

ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "ping after the rekeys"
n=$(udp_count "$NS_C1")
[ "$n" -eq 0 ] || fail "$n UDP packets tried to cross the link (expected 0)"
[ "$(tcp4500_conns "$NS_C1")" -ge 1 ] || fail "no TCP connection to $GW_TCP_PORT"
swan "$NS_C1" --list-sas

results_line "rekey over TCP: ${DURATION}s, $((${#seen_child[@]} - 1)) CHILD rekeys," \
	"$((${#seen_ike[@]} - 1)) IKE rekeys, ping lost $PING_LOST/$PING_SENT"
log "PASS"
