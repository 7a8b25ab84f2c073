#!/bin/bash
# 00-baseline-udp: the harness itself, without iketcpd. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

e2e_init
topo_basic

charon_start "$NS_GW" responder
# Straight to the responder over UDP, default ports (500 then 4500).
charon_start "$NS_C1" initiator remote="$(gw_addr 1)" rport=500 lport=500

initiate "$NS_C1" 30
must_wait "sa_established $NS_GW" 10 "responder: SA established"

ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "ping through the tunnel"

# The tunnel really carried the traffic: UDP crossed the link (IKE + ESP in
# UDP 4500, kernel-libipsec always encapsulates), and the ipsec0 TUN device
# counted the packets.
n=$(udp_count "$NS_C1")
[ "$n" -gt 0 ] || fail "no UDP packet counted on the link"
log "UDP packets on the link: $n"
ip -n "$NS_C1" -s link show ipsec0 >/dev/null || fail "no ipsec0 TUN device in $NS_C1"
tx=$(nsx "$NS_C1" cat /sys/class/net/ipsec0/statistics/tx_packets)
[ "$tx" -ge 5 ] || fail "ipsec0 sent $tx packets, expected >= 5"
log "ipsec0 in $NS_C1: $tx packets sent into the tunnel"
swan "$NS_C1" --list-sas

# Negative control for the other scenarios' "zero UDP" checks: with the
# block on, the tunnel (ESP in UDP 4500) goes dark and the drops are
# counted; with the block off again, it works again.
block_udp "$NS_C1"
if ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 2; then
	fail "ping still answered with UDP blocked: the nftables block does not work"
fi
[ "$PING_RECV" -eq 0 ] || fail "$PING_RECV pings answered with UDP blocked"
d=$(udp_drop_count "$NS_C1")
[ "$d" -gt 0 ] || fail "UDP block: nothing counted as dropped"
log "UDP block works: tunnel dark, $d UDP packets dropped"
unblock_udp "$NS_C1"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping after removing the block"

log "PASS"
