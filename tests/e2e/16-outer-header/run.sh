#!/bin/bash
# 16-outer-header: what the outer TCP/IP headers of the encapsulating
# connection carry: the MSS option (R66), one DSCP per direction whatever the
# inner packets carry (R65), and Not-ECT (R67) once ECN is off where the
# server runs; with Linux's default the server grants ECN to a client that
# asks. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

e2e_init
need_iketcpd
need_cmd tcpdump tshark

setup_tcp_pair
# The client host asks for ECN on its outgoing connections (macOS, iOS and
# many Linux hosts do); the server host keeps Linux's default (2: grant it
# to whoever asks) for the first phase.
nsx "$NS_C1" sysctl -qw net.ipv4.tcp_ecn=1
nsx "$NS_GW" sysctl -qw net.ipv4.tcp_ecn=2
slog=$(dir_of "$NS_GW")/iketcpd-server.log
grep -q 'net.ipv4.tcp_ecn = 2: TCP clients that ask for ECN get it' "$slog" ||
	fail "the server did not report net.ipv4.tcp_ecn = 2 at startup"

# capture_start NAME NS IFACE FILTER / capture_stop NAME
capture_start() {
	local name=$1 ns=$2 ifc=$3 filter=$4
	ip netns exec "$ns" tcpdump -i "$ifc" -n -U -s 128 -w "$RUN/$name.pcap" "$filter" \
		>"$RUN/tcpdump-$name.out" 2>&1 &
	track_pid $!
	echo $! >"$RUN/tcpdump-$name.pid"
	must_wait "grep -q 'listening on' $RUN/tcpdump-$name.out" 10 "tcpdump $name"
}
capture_stop() {
	local pid
	pid=$(cat "$RUN/tcpdump-$1.pid")
	sleep 0.3 # the last packets through the capture buffer
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
# fields PCAP FILTER FIELD...: one line per packet, fields separated by spaces.
fields() {
	local pcap=$1 filter=$2 f args=()
	shift 2
	for f in "$@"; do args+=(-e "$f"); done
	tshark -r "$pcap" -Y "$filter" -T fields -E separator=' ' "${args[@]}" 2>/dev/null
}
# ecn_granted PCAP: the server's SYN-ACK says ECN (ECE set, RFC 3168).
# (ss -ti of Debian 12's iproute2 does not show "ecn" on this kernel.)
ecn_granted() {
	[ -n "$(fields "$1" 'tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.flags.ece == 1' frame.number)" ]
}
# mixed_dscp_pings: inner pings with three different DSCPs (0, AF41, EF).
mixed_dscp_pings() {
	local q
	for q in 0x00 0x88 0xb8; do
		nsx "$NS_C1" ping -n -q -c 3 -i 0.2 -W 2 -Q "$q" -I "$(inner_addr 1)" "$GW_INNER" \
			>/dev/null || fail "inner ping with TOS $q"
	done
}

# ---- phase 1: Linux's default on the server host ------------------------------
capture_start p1 "$NS_C1" eth0 "tcp port $GW_TCP_PORT"
initiate "$NS_C1" 30
mixed_dscp_pings
capture_stop p1
ecn_granted "$RUN/p1.pcap" ||
	fail "control: with net.ipv4.tcp_ecn=2 the server did not grant ECN; this test cannot see ECN"
n=$(fields "$RUN/p1.pcap" 'tcp.len > 0 && ip.dsfield.ecn != 0' frame.number | wc -l)
[ "$n" -gt 0 ] || fail "control: ECN was negotiated but no outer packet is ECN-capable"
log "control: tcp_ecn=2 on the server: ECN negotiated, $n outer data packets ECN-capable"

# ---- phase 2: net.ipv4.tcp_ecn = 0 on the server host (docs/conformance.md R67)
nsx "$NS_GW" sysctl -qw net.ipv4.tcp_ecn=0
capture_start p2 "$NS_C1" eth0 "tcp port $GW_TCP_PORT"
capture_start lo2 "$NS_C1" lo "udp port $CLIENT_UDP_PORT"
t_kill=$(now_ms)
nsx "$NS_C1" ss -K -t state established "( dport = :$GW_TCP_PORT )" >/dev/null
ping_recovery "$NS_C1" "$(inner_addr 1)" "$GW_INNER" "$t_kill" 5000 ||
	fail "no ping answered within 5 s after the reconnect"
mixed_dscp_pings
capture_stop p2
capture_stop lo2
[ -n "$(fields "$RUN/p2.pcap" 'tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.flags.ece == 1' frame.number)" ] ||
	fail "the client's new SYN did not ask for ECN"
! ecn_granted "$RUN/p2.pcap" || fail "net.ipv4.tcp_ecn=0 on the server: ECN still granted"

# R67: every outer packet of the new connection, both directions, Not-ECT.
total=$(fields "$RUN/p2.pcap" 'tcp' frame.number | wc -l)
n=$(fields "$RUN/p2.pcap" 'ip.dsfield.ecn != 0' frame.number | wc -l)
log "R67: $n of $total outer packets ECN-marked"
[ "$total" -gt 10 ] || fail "only $total packets captured"
[ "$n" -eq 0 ] || fail "$n outer packets carry ECN bits (expected Not-ECT)"

# R66: the SYN and the SYN-ACK carry an MSS option.
syn=$(fields "$RUN/p2.pcap" 'tcp.flags.syn == 1 && tcp.flags.ack == 0' tcp.options.mss_val)
synack=$(fields "$RUN/p2.pcap" 'tcp.flags.syn == 1 && tcp.flags.ack == 1' tcp.options.mss_val)
log "R66: SYN MSS '${syn//$'\n'/,}', SYN-ACK MSS '${synack//$'\n'/,}'"
for v in "$syn" "$synack"; do
	if [ -z "$v" ] || grep -qv '^[0-9][0-9]*$' <<<"$v"; then
		fail "a SYN or SYN-ACK without an MSS option"
	fi
done

# R65: the inner packets had three DSCPs; each direction of the connection
# has one.
inner=$(fields "$RUN/lo2.pcap" 'udp' ip.dsfield.dscp | sort -u | tr '\n' ' ')
log "R65: DSCPs of the datagrams iketcpd's client relayed: $inner"
for dir in "ip.dst == $(gw_addr 1)" "ip.src == $(gw_addr 1)"; do
	d=$(fields "$RUN/p2.pcap" "tcp && $dir" ip.dsfield.dscp | sort -u)
	log "R65: outer DSCPs ($dir): ${d//$'\n'/ }"
	[ "$(wc -l <<<"$d")" -eq 1 ] || fail "outer packets ($dir) carry several DSCPs: ${d//$'\n'/ }"
done

n=$(udp_count "$NS_C1")
[ "$n" -eq 0 ] || fail "$n UDP packets tried to cross the link (expected 0)"
results_line "outer header: ECN granted with tcp_ecn=2 on the server, Not-ECT with 0; MSS $syn/$synack; one DSCP per direction (inner: $inner)"
log "PASS"
