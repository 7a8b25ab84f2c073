#!/bin/bash
# 08-tls-443: IKE and ESP over TLS on TCP 443 only (issue #4). See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=SCRIPTDIR/../tls.sh
. "$(dirname "$0")/../tls.sh"

MAX_RECOVERY_MS=5000

e2e_init
need_tls_iketcpd
need_cmd openssl tcpdump tshark
on_failure nft_only_dump

GW=$(gw_addr 1)
PKI=$RUN/pki
tls_make_pki "$PKI" "$GW"

topo_basic
# c1's link: UDP dropped (and counted, lib.sh), and of everything else only
# TCP to / from port 443 of the gateway passes.
block_udp "$NS_C1"
nft_only "$NS_C1" eth0 "ip daddr $GW tcp dport $TLS_PORT" "ip saddr $GW tcp sport $TLS_PORT"
nft_reset "$NS_C1"
nft_only_reset "$NS_C1"

charon_start "$NS_GW" responder
# The plain listener stays (on 4500): the nftables rules keep the client off it.
iketcpd_tls_server "$NS_GW" server "$TLS_PORT" --listen 0.0.0.0:4500 \
	--tls-cert "$PKI/gw.pem" --tls-key "$PKI/gw.key" --stats-socket "$RUN/gw/stats.sock"

PCAP=$RUN/c1/link.pcap
capture_start "$NS_C1" eth0 "$PCAP"
iketcpd_tls_client "$NS_C1" client "$GW:$TLS_PORT" --tls yes --tls-ca-file "$PKI/ca.pem" \
	--tls-server-name "$TLS_NAME"
charon_start "$NS_C1" initiator
t0=$(now_ms)
initiate "$NS_C1" 30
up_ms=$(($(now_ms) - t0))
must_wait "sa_established $NS_GW" 10 "responder: SA established"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "ping through the tunnel"

# One established TLS connection to 443 carries everything.
c=$(nsx "$NS_C1" ss -Htn state established "( dport = :$TLS_PORT )" | wc -l)
nsx "$NS_C1" ss -tni "( dport = :$TLS_PORT )"
[ "$c" -eq 1 ] || fail "expected 1 established TCP connection to $TLS_PORT, found $c"
sas_match "$NS_GW" "@ 127\.0\.0\.1\[" || fail "the responder does not see its peer behind the iketcpd server"

# ---- ss -K: the connection dies, the tunnel recovers over a new TLS connection.
conn_sport() {
	nsx "$NS_C1" ss -Htn state established "( dport = :$TLS_PORT )" |
		awk 'NR == 1 {n = split($3, a, ":"); print a[n]}'
}
spis_before=$(ike_spis "$NS_C1")
old=$(conn_sport)
pinger_start bg "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 0.2
t_kill=$(now_ms)
nsx "$NS_C1" ss -K -t state established "( dport = :$TLS_PORT )" >/dev/null
log "killed the TLS connection from port $old (ss -K)"
ping_recovery "$NS_C1" "$(inner_addr 1)" "$GW_INNER" "$t_kill" "$MAX_RECOVERY_MS" ||
	fail "no ping answered within ${MAX_RECOVERY_MS} ms after the kill"
recovered=$RECOVERED
new=$(conn_sport)
log "ping recovered after $recovered ms; new connection from port ${new:-?}"
{ [ -n "$new" ] && [ "$new" != "$old" ]; } || fail "no new TLS connection (old port $old, now '$new')"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping after the reconnect"
pinger_stop bg
[ "$(ike_spis "$NS_C1")" = "$spis_before" ] || fail "the IKE SA changed across the reconnect"
# Whether the client says it resumed the TLS session (RFC 9329 B.3).
client_resumed="not logged"
while IFS= read -r line; do
	log "client log: $line"
	case "$line" in
	*"not resumed"*) client_resumed=no ;;
	*resumed*) client_resumed=yes ;;
	esac
done < <(grep -i 'resum' "$RUN/c1/iketcpd-client.log" | tail -n 2)
log "the client says the reconnect resumed the TLS session: $client_resumed"

# ---- the link: zero UDP, nothing but TCP 443.
capture_stop "$PCAP"
u=$(udp_count "$NS_C1")
oo=$(nft_only_count "$NS_C1" other_out)
oi=$(nft_only_count "$NS_C1" other_in)
ao=$(nft_only_count "$NS_C1" allowed_out)
ai=$(nft_only_count "$NS_C1" allowed_in)
log "link counters: UDP $u; TCP $TLS_PORT out $ao, in $ai; anything else out $oo, in $oi"
[ "$u" -eq 0 ] || fail "$u UDP packets tried to cross the link (expected 0)"
{ [ "$oo" -eq 0 ] && [ "$oi" -eq 0 ]; } || fail "packets other than TCP $TLS_PORT on the link: out $oo, in $oi"
{ [ "$ao" -gt 0 ] && [ "$ai" -gt 0 ]; } || fail "no TCP $TLS_PORT counted on the link"

# ---- the capture: a TLS handshake with the SNI, and no plaintext IKETCP.
tsh() {
	tshark -n -r "$PCAP" -o "tls.desegment_ssl_records:TRUE" "$@" 2>/dev/null
}
other=$(tsh -Y "ip && !(tcp.port == $TLS_PORT)" | wc -l)
[ "$other" -eq 0 ] || fail "the capture has $other IP packets that are not TCP $TLS_PORT"
hellos=$(tsh -Y 'tls.handshake.type == 1' -T fields -e tcp.stream -e tls.handshake.extensions_server_name)
log "ClientHellos (tcp.stream, SNI): $(tr '\n\t' '; ' <<<"$hellos")"
nh=$(grep -c . <<<"$hellos" || true)
[ "$nh" -ge 2 ] || fail "expected a ClientHello for the first connection and the reconnect, found $nh"
awk -F'\t' -v n="$TLS_NAME" '$2 != n {bad = 1} END {exit bad}' <<<"$hellos" ||
	fail "a ClientHello without SNI $TLS_NAME"
shellos=$(tsh -Y 'tls.handshake.type == 2' -T fields -e tcp.stream \
	-e tls.handshake.extensions.supported_version -e tls.handshake.extension.type)
log "ServerHellos (tcp.stream, version, extensions): $(tr '\n\t' '; ' <<<"$shellos")"
[ "$(grep -c . <<<"$shellos" || true)" -ge 2 ] || fail "expected 2 ServerHellos"
# (TLS 1.3 records show their outer type as tls.record.opaque_type)
appdata=$(tsh -Y 'tls.record.content_type == 23 || tls.record.opaque_type == 23' | wc -l)
[ "$appdata" -gt 0 ] || fail "no TLS application data records in the capture"
# TLS 1.3 resumption: the ServerHello of the second connection carries
# pre_shared_key (extension 41).
second=$(sed -n 2p <<<"$shellos")
resumed=no
awk -F'\t' '{n = split($3, e, ","); for (i = 1; i <= n; i++) if (e[i] == 41) f = 1} END {exit !f}' \
	<<<"$second" && resumed=yes
log "the reconnect's TLS handshake resumed the session (pre_shared_key in ServerHello): $resumed"
if [ -x "$IKETCP_CLI" ] && [ -S "$RUN/gw/stats.sock" ]; then
	stats_get "$RUN/gw/stats.sock" >"$RUN/gw/stats.txt" || true
	log "server counters: $(grep -E '^(accepted|tls_[a-z_]*) ' "$RUN/gw/stats.txt" | tr '\n' ';')"
fi

# Every TCP payload on the link, each direction of each connection
# concatenated in capture order: the bytes "IKETCP" appear nowhere (the
# prefix travels inside TLS). The raw capture file is searched too.
# scan_iketcp PCAP: "DIRECTIONS PAYLOAD_BYTES DIRECTIONS_WITH_IKETCP".
scan_iketcp() {
	tshark -n -r "$1" -Y 'tcp.len > 0' -T fields -e tcp.stream -e tcp.srcport -e tcp.payload \
		2>/dev/null >"$RUN/payloads.txt"
	python3 - "$RUN/payloads.txt" <<'PY'
import sys
streams = {}
for line in open(sys.argv[1]):
    parts = line.rstrip("\n").split("\t")
    if len(parts) < 3 or not parts[2]:
        continue
    streams.setdefault((parts[0], parts[1]), []).append(bytes.fromhex(parts[2].replace(":", "")))
total = sum(len(b) for v in streams.values() for b in v)
hits = [k for k, v in streams.items() if b"IKETCP" in b"".join(v)]
print(len(streams), total, len(hits))
PY
}
# Control: the same scan finds the prefix in a plain RFC 9329 capture.
read -r _ _ chits <<<"$(scan_iketcp "$ROOT/tests/data/libreswan-espintcp-session.pcap")"
[ "$chits" -eq 1 ] || fail "control: the scan did not find IKETCP in the plain libreswan capture"
scan=$(scan_iketcp "$PCAP")
read -r ndir nbytes nhits <<<"$scan"
raw=$(grep -c -a IKETCP "$PCAP" || true)
log "capture: $ndir stream directions, $nbytes TCP payload bytes, $appdata application-data records;" \
	"'IKETCP' found in $nhits directions, $raw times in the raw file"
[ "$nbytes" -gt 1000 ] || fail "only $nbytes TCP payload bytes captured"
{ [ "$nhits" -eq 0 ] && [ "$raw" -eq 0 ]; } || fail "plaintext IKETCP on the link"

iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
iketcpd_alive "$NS_C1" client || fail "iketcpd client died"
log "tunnel up in $up_ms ms; recovery after ss -K $recovered ms (background ping lost $PING_LOST of $PING_SENT); TLS resumed: $resumed (capture), $client_resumed (client log)"
results_line "TLS on 443 only: tunnel up in $up_ms ms; ss -K -> ping recovered in $recovered ms" \
	"(ping lost $PING_LOST/$PING_SENT); TLS session resumed on reconnect: $resumed (capture)," \
	"$client_resumed (client log);" \
	"ClientHellos $nh, TCP payload $nbytes bytes, plaintext IKETCP 0"
log "PASS"
