#!/bin/bash
# 17-full-tunnel: remote_ts = 0.0.0.0/0 on the initiator; iketcpd's own
# connection must stay out of the tunnel it carries. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

e2e_init
need_iketcpd

MARK=0x42
INET=198.51.100.1 # a host behind gw, reachable from c1 only through the tunnel
NS_INET=$(ns_of inet)
# E2E_FTUN_NOMARK=1: the iketcpd client without mark (the failure this
# scenario exists for: run it once to see the connection loop into the tunnel)
NOMARK=${E2E_FTUN_NOMARK:-0}

# ---- topology: c1 -- gw -- inet ------------------------------------------------
topo_basic
ns_create "$NS_INET"
ip -n "$NS_INET" link add eth0 type veth peer name inet0 netns "$NS_GW"
nsx "$NS_INET" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
nsx "$NS_GW" sysctl -qw net.ipv6.conf.inet0.disable_ipv6=1
ip -n "$NS_INET" addr add "$INET/24" dev eth0
ip -n "$NS_GW" addr add 198.51.100.2/24 dev inet0
ip -n "$NS_INET" link set eth0 up
ip -n "$NS_GW" link set inet0 up
ip -n "$NS_INET" route add default via 198.51.100.2
nsx "$NS_GW" sysctl -qw net.ipv4.ip_forward=1
nsx "$NS_GW" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
# inet counts the pings it answers that came from c1's inner address
nsx "$NS_INET" nft -f - <<NFT
table inet e2e {
	counter from_c1 {}
	chain in { type filter hook input priority 0; policy accept;
		ip saddr $(inner_addr 1) icmp type echo-request counter name "from_c1"
	}
}
NFT
# c1 counts TCP to port 4500 that went into the tunnel device (must stay 0)
nsx "$NS_C1" nft add counter inet e2e tcp4500_tun
nsx "$NS_C1" nft add rule inet e2e count_out oifname ipsec0 tcp dport "$GW_TCP_PORT" counter name tcp4500_tun
block_udp "$NS_C1"

# Before the tunnel, c1 has no route to inet at all.
! nsx "$NS_C1" ping -c1 -W1 "$INET" >/dev/null 2>&1 || fail "$INET reachable without the tunnel"

# ---- gateway: responder offering 0.0.0.0/0 + iketcpd server -----------------
charon_start "$NS_GW" responder local_ts=0.0.0.0/0 remote_ts=10.1.0.0/24
iketcpd_server "$NS_GW"

# ---- client: iketcpd client from a config file (reloaded below) + initiator --
D1=$(dir_of "$NS_C1")
CONF=$D1/iketcpd-client.conf
# client_conf BYPASS: writes the client's configuration.
client_conf() {
	{
		echo "[client c1]"
		echo "udp = 127.0.0.1:$CLIENT_UDP_PORT"
		echo "peer = $(gw_addr 1):$GW_TCP_PORT"
		echo "enable-tcp = yes"
		[ "$NOMARK" = 1 ] || echo "mark = $MARK"
		echo "bypass-policy = $1"
	} >"$CONF"
}
client_conf yes
setsid ip netns exec "$NS_C1" "$IKETCPD" -f -v -c "$CONF" >"$D1/iketcpd-client.log" 2>&1 &
track_pid $!
echo $! >"$D1/iketcpd-client.pid"
CPID=$!
must_wait "nsx $NS_C1 ss -Hluan 'sport = :$CLIENT_UDP_PORT' | grep -q ." 10 "iketcpd client bound"
charon_start "$NS_C1" initiator remote_ts=0.0.0.0/0 fwmark="$MARK"

# reloads: the number of "configuration reloaded" lines so far
reloads() { grep -c "configuration reloaded" "$D1/iketcpd-client.log" || true; }
# reload BYPASS: rewrite the config, SIGHUP, wait for it to be taken.
reload() {
	local n
	n=$(reloads)
	client_conf "$1"
	kill -HUP "$CPID"
	must_wait "[ \$(reloads) -gt $n ]" 10 "iketcpd client reloaded (bypass-policy = $1)"
}
# outer_conns: c1's established connections to the gateway's port, with ss -e.
outer_conns() {
	nsx "$NS_C1" ss -Htne state established "( dport = :$GW_TCP_PORT )" 2>/dev/null
}
# conn_port: the local port of c1's connection ("" if none).
conn_port() {
	outer_conns | awk 'NR == 1 { n = split($3, a, ":"); print a[n] }'
}
on_failure dump_routes
dump_routes() {
	echo "----- $NS_C1: ip rule / table 220 / xfrm policy"
	nsx "$NS_C1" ip rule 2>&1 || true
	nsx "$NS_C1" ip route show table 220 2>&1 || true
	nsx "$NS_C1" ip xfrm policy 2>&1 || true
	echo "----- $NS_C1: ss -tne"
	outer_conns 2>&1 || true
}

initiate "$NS_C1" 30
must_wait "sa_established $NS_GW" 10 "responder: SA established"
swan "$NS_C1" --list-sas

# The tunnel covers the gateway's own address: unmarked packets to it are
# routed into ipsec0; only the mark takes them out of the real interface.
nsx "$NS_C1" ip rule
nsx "$NS_C1" ip route show table 220
r=$(nsx "$NS_C1" ip route get "$(gw_addr 1)")
log "route to the gateway, unmarked: $r"
grep -q "dev ipsec0" <<<"$r" || fail "the tunnel does not cover $(gw_addr 1): $r"
r=$(nsx "$NS_C1" ip route get "$(gw_addr 1)" mark "$MARK")
log "route to the gateway, mark $MARK: $r"
grep -q "dev eth0" <<<"$r" || fail "marked packets to $(gw_addr 1) do not leave on eth0: $r"

# ---- traffic: a host behind the responder, and one only the tunnel reaches ---
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "ping $GW_INNER through the tunnel"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$INET" 5 || fail "ping $INET through the tunnel"
n=$(nsx "$NS_INET" nft list counter inet e2e from_c1 | sed -n 's/.*packets \([0-9]*\).*/\1/p')
[ "$n" -ge 5 ] || fail "$INET saw $n echo requests from $(inner_addr 1) (want >= 5)"
log "$INET answered $n echo requests from $(inner_addr 1)"

# ---- the outer connection: on eth0, marked, never in the tunnel -------------
outer_conns
[ "$(tcp4500_conns "$NS_C1")" -eq 1 ] || fail "expected 1 TCP connection to $GW_TCP_PORT"
outer_conns | grep -q "fwmark:$MARK" || fail "the connection does not carry fwmark $MARK"
outer_conns | grep -q "$(client_addr 1):" || fail "the connection's source is not $(client_addr 1)"
grep -q "outer sockets carry SO_MARK $MARK and an IPsec bypass policy" "$D1/iketcpd-client.log" ||
	fail "iketcpd client did not say it marked its socket"
t0=$(tcp4500_count "$NS_C1")
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$INET" 5 || fail "ping $INET (2)"
t1=$(tcp4500_count "$NS_C1")
log "TCP packets to/from port $GW_TCP_PORT on eth0 during 5 pings: $((t1 - t0))"
[ $((t1 - t0)) -ge 10 ] || fail "the pings did not cross eth0 inside TCP ($((t1 - t0)) packets)"

# ---- a new connection made while the full tunnel is up ------------------------
p0=$(conn_port)
t0=$(now_ms)
nsx "$NS_C1" ss -K -t state established "( dport = :$GW_TCP_PORT )" >/dev/null
ping_recovery "$NS_C1" "$(inner_addr 1)" "$INET" "$t0" 5000 ||
	fail "no ping through the tunnel within 5 s of killing the connection"
log "ping back ${RECOVERED} ms after the connection was killed"
p1=$(conn_port)
if [ -z "$p1" ] || [ "$p1" = "$p0" ]; then fail "no new connection (port $p0 -> $p1)"; fi
outer_conns | grep -q "fwmark:$MARK" || fail "the new connection does not carry fwmark $MARK"
outer_conns | grep -q "$(client_addr 1):$p1" || fail "the new connection's source is not $(client_addr 1)"
results_line "reconnect under a full tunnel: ping back in ${RECOVERED} ms"

# ---- kernel XFRM: bypass-policy -------------------------------------------------
# This kernel has XFRM but no ESP, so a real kernel-ESP full tunnel cannot
# run here. A "block" policy for everything to the gateway stands in for
# one: like a tunnel policy covering the peer, it takes every unexempted
# packet to the gateway. Only the per-socket bypass policy gets through.
nsx "$NS_C1" ip xfrm policy add dst "$(gw_addr 1)/32" dir out action block
nsx "$NS_C1" ip xfrm policy
! nsx "$NS_C1" ping -c1 -W1 "$(gw_addr 1)" >/dev/null 2>&1 || fail "the block policy does not block"
t0=$(now_ms)
nsx "$NS_C1" ss -K -t state established "( dport = :$GW_TCP_PORT )" >/dev/null
ping_recovery "$NS_C1" "$(inner_addr 1)" "$INET" "$t0" 5000 ||
	fail "bypass-policy yes: no ping within 5 s under an XFRM policy covering the gateway"
log "bypass-policy yes under the XFRM policy: ping back ${RECOVERED} ms after the kill"
# The kernel lists per-socket policies as "socket in" / "socket out".
pol=$(nsx "$NS_C1" ip xfrm policy)
if ! grep -q "socket out" <<<"$pol" || ! grep -q "socket in" <<<"$pol"; then
	fail "no per-socket bypass policies listed by ip xfrm policy"
fi
# Negative control: without the bypass the reconnection is refused.
reload no
t0=$(now_ms)
nsx "$NS_C1" ss -K -t state established "( dport = :$GW_TCP_PORT )" >/dev/null
must_wait "grep -q 'Operation not permitted' $D1/iketcpd-client.log" 10 \
	"bypass-policy no: the XFRM policy refuses the connection"
[ "$(tcp4500_conns "$NS_C1")" -eq 0 ] || fail "bypass-policy no: still connected"
! nsx "$NS_C1" ping -c2 -i 0.2 -W1 -I "$(inner_addr 1)" "$INET" >/dev/null 2>&1 ||
	fail "bypass-policy no: the tunnel still works under the block policy"
reload yes
t0=$(now_ms)
ping_recovery "$NS_C1" "$(inner_addr 1)" "$INET" "$t0" 8000 ||
	fail "bypass-policy yes again: no ping within 8 s"
log "bypass-policy yes again: ping back ${RECOVERED} ms after the reload"
nsx "$NS_C1" ip xfrm policy flush

# ---- what must not have happened ----------------------------------------------
n=$(udp_count "$NS_C1")
[ "$n" -eq 0 ] || fail "$n UDP packets tried to cross the link (expected 0)"
n=$(nft_count "$NS_C1" tcp4500_tun)
[ "$n" -eq 0 ] || fail "$n TCP packets to port $GW_TCP_PORT went into ipsec0"
[ "$(swan "$NS_GW" --list-sas | grep -c ESTABLISHED)" -eq 1 ] || fail "responder has more than one IKE SA"
kill -0 "$CPID" 2>/dev/null || fail "iketcpd client died"
iketcpd_alive "$NS_GW" server || fail "iketcpd server died"

log "PASS"
