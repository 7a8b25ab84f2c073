#!/bin/bash
# 01-tcp-basic: IKE and ESP over TCP only. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

e2e_init
need_iketcpd

# gw: responder + iketcpd server; c1: iketcpd client (--enable-tcp yes) +
# initiator pointed at 127.0.0.1:4501; UDP dropped on the c1 <-> gw link.
setup_tcp_pair
# The whole session on the link, for the Wireshark dissector at the end.
PCAP=$(dir_of "$NS_C1")/tcp-basic.pcap
pcap_start "$NS_C1" eth0 "$PCAP"

initiate "$NS_C1" 30
must_wait "sa_established $NS_GW" 10 "responder: SA established"
swan "$NS_GW" --list-sas

ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "ping through the tunnel"

pcap_stop
pcap_check "$PCAP"

# Zero UDP on the link: the counting rule sits before the drop, so this
# counts every UDP packet that even tried to cross, in both directions.
n=$(udp_count "$NS_C1")
d=$(udp_drop_count "$NS_C1")
log "UDP packets on the link: $n (dropped: $d)"
[ "$n" -eq 0 ] || fail "$n UDP packets tried to cross the link (expected 0)"

# ... and the tunnel ran over one TCP connection to port 4500.
c=$(tcp4500_conns "$NS_C1")
nsx "$NS_C1" ss -tni "( dport = :$GW_TCP_PORT )"
[ "$c" -eq 1 ] || fail "expected 1 established TCP connection to $GW_TCP_PORT, found $c"
t=$(tcp4500_count "$NS_C1")
log "TCP packets to/from port $GW_TCP_PORT on the link: $t"
[ "$t" -gt 0 ] || fail "no TCP packet to/from port $GW_TCP_PORT counted"

# The ESP really went through ipsec0 and the IKE SA is the only one.
[ "$(swan "$NS_GW" --list-sas | grep -c ESTABLISHED)" -eq 1 ] || fail "responder has more than one IKE SA"
iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
iketcpd_alive "$NS_C1" client || fail "iketcpd client died"

# The operator's probe gets a real IKE_SA_INIT response from charon through
# the server, while the tunnel stays up.
IKETCP_CLI=$(dirname "$IKETCPD")/iketcp
if [ -x "$IKETCP_CLI" ]; then
	out=$(nsx "$NS_C1" "$IKETCP_CLI" probe -t 5 "$(gw_addr 1):$GW_TCP_PORT") ||
		fail "iketcp probe: exit $?: $out"
	printf '%s\n' "$out"
	grep -q "got IKE_SA_INIT response" <<<"$out" || fail "probe: no IKE_SA_INIT response"
	ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 2 || fail "ping after the probe"
else
	log "iketcp CLI not built next to iketcpd: probe skipped"
fi

log "PASS"
