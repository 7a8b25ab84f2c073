#!/bin/bash
# 14-two-sas: two IKE SAs from one initiator through one iketcpd client; each
# SA's ESP rides its own TCP connection (R25, R30). See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=SCRIPTDIR/../tls.sh
. "$(dirname "$0")/../tls.sh"

e2e_init
need_iketcpd
need_cmd tcpdump

INNER_B=10.1.0.11
DURATION=${E2E_TWO_SAS_DURATION:-12}

setup_tcp_pair
ip -n "$NS_C1" addr add "$INNER_B/32" dev lo

# A second connection in the initiator, to the same peer from the same
# local port 4500: its own identity and traffic selectors (10.1.0.11 <->
# 10.2.0.1), so strongSwan keeps it in an IKE SA of its own.
conf=$(dir_of "$NS_C1")/swanctl/swanctl.conf
awk -v b="$INNER_B" '
	/^\te2e \{$/ { grab = 1 }
	grab { blk = blk $0 "\n" }
	{ print }
	grab && /^\t\}$/ {
		grab = 0
		sub(/\te2e \{/, "\te2eb {", blk)
		sub(/id = c1\.iketcp\.test/, "id = c1b.iketcp.test", blk)
		sub(/\t\t\tnet \{/, "\t\t\tnetb {", blk)
		sub(/local_ts = [^\n]*/, "local_ts = " b "/32", blk)
		sub(/remote_ts = [^\n]*/, "remote_ts = 10.2.0.1/32", blk)
		printf "%s", blk
	}' "$conf" >"$conf.new" && mv "$conf.new" "$conf"
grep -q 'e2eb {' "$conf" || fail "could not add the second connection to $conf"
swan "$NS_C1" --load-conns --file "$conf" >"$RUN/load-conns.out" 2>&1 ||
	fail "swanctl --load-conns: $(cat "$RUN/load-conns.out")"

# Ground truth at the responder: which session socket (= which TCP connection
# of the client) each ESP packet came from, and which port each of the
# responder's IKE SAs lives on, polled with its inbound CHILD SPIs.
capture_start "$NS_GW" lo "$RUN/gw-lo.pcap"
: >"$RUN/spi-map"
record_map() {
	swan "$NS_GW" --list-sas 2>/dev/null | awk '
		/^[^ ].*: #[0-9]+, / { port = "" }
		/^  remote / { if (match($0, /\[[0-9]+\]/)) port = substr($0, RSTART + 1, RLENGTH - 2) }
		$1 == "in" && port != "" { s = $2; sub(/,/, "", s); print s, port }' >>"$RUN/spi-map"
}

initiate "$NS_C1" 30
SWAN_TIMEOUT=40 swan "$NS_C1" --initiate --child netb --timeout 30 >>"$RUN/initiate-b.out" 2>&1 ||
	fail "initiating the second IKE SA failed (see $RUN/initiate-b.out)"
ike_count() {
	swan "$NS_GW" --list-sas 2>/dev/null | grep -c ESTABLISHED || true
}
must_wait '[ "$(ike_count)" -eq 2 ]' 10 "responder: two IKE SAs"
record_map
swan "$NS_GW" --list-sas

# Both tunnels at once, then an IKE rekey of the first and a CHILD rekey of
# the second while both ping.
pinger_start a "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 0.2
pinger_start b "$NS_C1" "$INNER_B" "$GW_INNER" 0.2
end=$(($(now_ms) + DURATION * 1000))
rekeyed=0
while [ "$(now_ms)" -lt "$end" ]; do
	record_map
	if [ $rekeyed = 0 ] && [ $(($(now_ms) + DURATION * 500)) -ge "$end" ]; then
		swan "$NS_C1" --rekey --ike e2e >"$RUN/rekey-ike.out" 2>&1 || fail "IKE rekey: $(cat "$RUN/rekey-ike.out")"
		swan "$NS_C1" --rekey --child netb >"$RUN/rekey-child.out" 2>&1 || fail "CHILD rekey: $(cat "$RUN/rekey-child.out")"
		log "rekeyed: IKE SA e2e and CHILD SA netb"
		rekeyed=1
	fi
	sleep 0.5
done
record_map
pinger_stop a
lost_a=$PING_LOST sent_a=$PING_SENT recv_a=$PING_RECV
pinger_stop b
lost_b=$PING_LOST sent_b=$PING_SENT recv_b=$PING_RECV
capture_stop "$RUN/gw-lo.pcap"
swan "$NS_GW" --list-sas

ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 5 || fail "SA e2e: ping after the rekeys"
ping_tunnel "$NS_C1" "$INNER_B" "$GW_INNER" 5 || fail "SA e2eb: ping after the rekeys"
[ "$recv_a" -gt 0 ] && [ "$recv_b" -gt 0 ] || fail "a tunnel carried nothing (a $recv_a, b $recv_b)"

grep -c 'IKE_SA e2e\[[0-9]*\] rekeyed' "$(dir_of "$NS_C1")/charon.log" >/dev/null ||
	fail "the initiator's log shows no IKE rekey"
c=$(tcp4500_conns "$NS_C1")
[ "$c" -eq 2 ] || fail "expected 2 TCP connections to $GW_TCP_PORT (one per IKE SA), found $c"
n=$(udp_count "$NS_C1")
[ "$n" -eq 0 ] || fail "$n UDP packets tried to cross the link (expected 0)"

clog=$(dir_of "$NS_C1")/iketcpd-client.log
guessed=$(grep -c 'provisional guess' "$clog" || true)
moved=$(grep -c 'moved from flow' "$clog" || true)
log "iketcpd client: $(grep -c 'outbound ESP SPI .*: flow' "$clog" || true) new outbound SPIs," \
	"$guessed guessed, $moved moved by the peer's answer"
if ! python3 "$(dirname "$0")/esp_ports.py" "$RUN/gw-lo.pcap" "$RUN/spi-map" >"$RUN/esp-ports.out"; then
	cat "$RUN/esp-ports.out"
	fail "ESP of an IKE SA rode another IKE SA's TCP connection"
fi
cat "$RUN/esp-ports.out"
results_line "two IKE SAs over one client: $(tail -n1 "$RUN/esp-ports.out" | sed 's/^summary: //');" \
	"guesses $guessed, moved $moved; ping a lost $lost_a/$sent_a, b lost $lost_b/$sent_b"
log "PASS"
