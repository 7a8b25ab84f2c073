#!/bin/bash
# 04-fallback: --enable-tcp fallback uses UDP when it works, TCP when it
# does not. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

FALLBACK_WAIT=${E2E_FALLBACK_WAIT:-2s}

e2e_init
need_iketcpd

topo_basic
charon_start "$NS_GW" responder
iketcpd_server "$NS_GW"

# ---- (a) UDP open: the tunnel runs over UDP and no TCP connection is made.
log "(a) enable-tcp fallback, UDP open"
iketcpd_client "$NS_C1" "$(gw_addr 1)" --enable-tcp fallback --fallback-wait "$FALLBACK_WAIT"
charon_start "$NS_C1" initiator remote=127.0.0.1 rport="$CLIENT_UDP_PORT" lport=4500
initiate "$NS_C1" 30
must_wait "sa_established $NS_GW" 10 "(a) responder: SA established"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "(a) ping through the tunnel"
u=$(udp_count "$NS_C1")
t=$(tcp4500_count "$NS_C1")
c=$(tcp4500_conns "$NS_C1")
log "(a) UDP packets on the link: $u; TCP packets to/from $GW_TCP_PORT: $t; TCP connections: $c"
[ "$u" -gt 0 ] || fail "(a) no UDP on the link: the tunnel did not run over UDP"
[ "$t" -eq 0 ] || fail "(a) $t TCP packets to/from port $GW_TCP_PORT (expected none)"
[ "$c" -eq 0 ] || fail "(a) $c TCP connections to port $GW_TCP_PORT (expected none)"
sas_match "$NS_GW" "@ $(client_addr 1)\[" ||
	fail "(a) the responder does not see the client's own address (not direct UDP?)"

# ---- (b) UDP blocked: the same configuration comes up over TCP.
log "(b) enable-tcp fallback, UDP blocked"
swan "$NS_C1" --terminate --ike e2e --timeout 15 >/dev/null 2>&1 || true
must_wait "no_sa $NS_GW" 20 "(b) old SA gone on the responder"
must_wait "no_sa $NS_C1" 10 "(b) old SA gone on the initiator"
iketcpd_stop "$NS_C1" client
block_udp "$NS_C1"
nft_reset "$NS_C1"
iketcpd_client "$NS_C1" "$(gw_addr 1)" --enable-tcp fallback --fallback-wait "$FALLBACK_WAIT"
t0=$(now_ms)
initiate "$NS_C1" 40
up_ms=$(($(now_ms) - t0))
must_wait "sa_established $NS_GW" 10 "(b) responder: SA established"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "(b) ping through the tunnel"
d=$(udp_drop_count "$NS_C1")
c=$(tcp4500_conns "$NS_C1")
log "(b) tunnel up in $up_ms ms; UDP dropped: $d; TCP connections: $c"
[ "$d" -gt 0 ] || fail "(b) no UDP was dropped: fallback mode did not try UDP first"
[ "$c" -eq 1 ] || fail "(b) expected 1 TCP connection to $GW_TCP_PORT, found $c"
sas_match "$NS_GW" "@ 127\.0\.0\.1\[" ||
	fail "(b) the responder does not see the peer behind the iketcpd server"
results_line "fallback: UDP blocked -> tunnel up over TCP in $up_ms ms (fallback-wait $FALLBACK_WAIT)"
log "PASS"
