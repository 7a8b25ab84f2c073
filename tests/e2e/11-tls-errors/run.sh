#!/bin/bash
# 11-tls-errors: the TLS client refuses bad certificates; the TLS server
# survives hostile openings; a TLS tunnel through the same server keeps
# pinging (issue #4). See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=SCRIPTDIR/../tls.sh
. "$(dirname "$0")/../tls.sh"

HS_TIMEOUT=2     # server --tls-handshake-timeout, seconds
PREFIX_TIMEOUT=2 # server --prefix-timeout, seconds
EXPIRED_PORT=8443

e2e_init
need_tls_iketcpd
need_cmd openssl
[ -x "$IKETCP_CLI" ] || fail "the iketcp CLI (for 'iketcp stats') is not next to iketcpd: $IKETCP_CLI"

GW1=$(gw_addr 1)
GW2=$(gw_addr 2)
PKI=$RUN/pki
STATS=$RUN/gw/stats.sock
tls_make_pki "$PKI" "$GW1" "$GW2"

# gw + c1 (the tunnel) + c2 (the bad clients and the hostile openings)
topo_gw
topo_client 1
topo_client 2
must_wait "nsx $NS_C1 ping -c1 -W1 $GW1" 10 "link c1 -> gw"
NS_C2=$(ns_of c2)
must_wait "nsx $NS_C2 ping -c1 -W1 $GW2" 10 "link c2 -> gw"
block_udp "$NS_C1"
block_udp "$NS_C2"

charon_start "$NS_GW" responder
iketcpd_tls_server "$NS_GW" server "$TLS_PORT" --listen 0.0.0.0:4500 \
	--tls-cert "$PKI/gw.pem" --tls-key "$PKI/gw.key" \
	--tls-handshake-timeout "${HS_TIMEOUT}s" --prefix-timeout "${PREFIX_TIMEOUT}s" \
	--stats-socket "$STATS"
# A second server whose certificate expired in 2020.
iketcpd_tls_server "$NS_GW" server-expired "$EXPIRED_PORT" --listen 127.0.0.1:4599 \
	--tls-cert "$PKI/expired.pem" --tls-key "$PKI/expired.key"

iketcpd_tls_client "$NS_C1" client "$GW1:$TLS_PORT" --tls yes --tls-ca-file "$PKI/ca.pem" \
	--tls-server-name "$TLS_NAME"
charon_start "$NS_C1" initiator
charon_start "$NS_C2" initiator
initiate "$NS_C1" 30
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping before the bad cases"
pinger_start bg "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 0.2

# ---- (A) the client refuses bad certificates ---------------------------------------
# bad_cert NAME PEER REASON ARGS...: an iketcpd client in c2 with ARGS, the
# c2 initiator tries; the client must log REASON, and no SA may come up.
REFUSALS=""
bad_cert() {
	local name=$1 peer=$2 reason=$3 f ini n line
	shift 3
	f=$RUN/c2/iketcpd-client-$name.log
	log "(A) $name: --peer $peer $*"
	iketcpd_tls_client "$NS_C2" "client-$name" "$peer" --tls yes --reconnect-min 200ms "$@"
	SWAN_TIMEOUT=15 swan "$NS_C2" --initiate --child net --timeout 10 >"$RUN/c2/initiate-$name.out" 2>&1 &
	ini=$!
	track_pid "$ini"
	must_wait "grep -qiF '$reason' $f" 10 "(A) $name: client logs '$reason'"
	line=$(grep -iF -m 1 "$reason" "$f")
	log "(A) $name: $line"
	# It keeps trying with backoff (the initiator's request stays pending).
	wait_until "[ \$(grep -ciF '$reason' $f) -ge 3 ]" 4 || true
	n=$(grep -ciF "$reason" "$f" || true)
	# iketcpd says when it retries ("retrying in 200ms"): the delays grow.
	delays=$(grep -iF "$reason" "$f" | sed -n 's/.*retrying in \([0-9]*\)ms.*/\1/p' | paste -sd' ' -)
	if [ -n "$delays" ]; then
		log "(A) $name: retry delays (ms): $delays"
		awk '{for (i = 2; i <= NF; i++) if ($i < $(i - 1)) exit 1; exit !(NF < 2 || $NF > $1)}' \
			<<<"$delays" || fail "(A) $name: the retry delays do not grow: $delays"
	fi
	sa_established "$NS_C2" && fail "(A) $name: the c2 initiator has an SA"
	sas_match "$NS_GW" 'c2\.iketcp\.test' && fail "(A) $name: the responder has an SA with c2"
	grep -q 'ESTABLISHED' <(swan "$NS_C2" --list-sas 2>/dev/null) && fail "(A) $name: c2 has an IKE SA"
	swan "$NS_C2" --terminate --ike e2e --force --timeout 5 >/dev/null 2>&1 || true
	wait_until "! kill -0 $ini" 15 || fail "(A) $name: swanctl --initiate did not return"
	grep -q 'established' "$RUN/c2/initiate-$name.out" && fail "(A) $name: swanctl says established"
	iketcpd_alive "$NS_C2" "client-$name" || fail "(A) $name: the iketcpd client exited"
	iketcpd_stop "$NS_C2" "client-$name"
	must_wait "no_sa $NS_C2" 10 "(A) $name: c2 has no SA"
	log "(A) $name: refused, '$reason' logged $n time(s), no SA"
	REFUSALS="$REFUSALS $name:$n"
}
bad_cert expired "$GW2:$EXPIRED_PORT" "certificate has expired" \
	--tls-ca-file "$PKI/ca.pem" --tls-server-name "$TLS_NAME"
bad_cert wrong-name "$GW2:$TLS_PORT" "hostname mismatch" \
	--tls-ca-file "$PKI/ca.pem" --tls-server-name wrong.iketcp.test
bad_cert unknown-ca "$GW2:$TLS_PORT" "unable to get local issuer certificate" \
	--tls-ca-file "$PKI/other-ca.pem" --tls-server-name "$TLS_NAME"
# pin KEY: the SHA-256 of a key's SubjectPublicKeyInfo, base64 (tls-pin-sha256).
pin() {
	openssl pkey -in "$1" -pubout -outform DER | openssl dgst -sha256 -binary | base64
}
bad_cert wrong-pin "$GW2:$TLS_PORT" "pin mismatch" \
	--tls-ca-file "$PKI/ca.pem" --tls-server-name "$TLS_NAME" --tls-pin-sha256 "$(pin "$PKI/other-ca.key")"

# The pin alone (--tls-verify no): the expired certificate is accepted
# because its key is the pinned one, and c2's tunnel comes up through it.
log "(A) pin-only: --peer $GW2:$EXPIRED_PORT --tls-verify no --tls-pin-sha256 (the expired certificate's key)"
iketcpd_tls_client "$NS_C2" client-pin "$GW2:$EXPIRED_PORT" --tls yes --tls-verify no \
	--tls-pin-sha256 "$(pin "$PKI/expired.key")"
initiate "$NS_C2" 20
ping_tunnel "$NS_C2" "$(inner_addr 2)" "$GW_INNER" 3 || fail "(A) pin-only: ping through c2's tunnel"
[ -n "$(nsx "$NS_C2" ss -Htn state established "( dport = :$EXPIRED_PORT )")" ] ||
	fail "(A) pin-only: no connection to the expired server"
swan "$NS_C2" --terminate --ike e2e --timeout 10 >/dev/null 2>&1 || true
must_wait "! sas_match $NS_GW 'c2\\.iketcp\\.test'" 15 "(A) pin-only: c2's SA gone on the responder"
iketcpd_stop "$NS_C2" client-pin

# ---- (B) the server survives hostile TLS openings -----------------------------------
wait_until "[ \$(stats_get $STATS | awk '\$1 == \"connections\" {print \$2}') -eq 1 ]" 10 ||
	fail "(B) the server does not have exactly 1 connection (the tunnel's) before the hostile cases"
stats_get "$STATS" >"$RUN/gw/stats-before.txt"
rc=0
timeout 60 ip netns exec "$NS_C2" python3 "$E2E_DIR/hostile_tls.py" "$GW2" "$TLS_PORT" \
	--handshake-timeout "$HS_TIMEOUT" --prefix-timeout "$PREFIX_TIMEOUT" \
	--servername "$TLS_NAME" --cafile "$PKI/ca.pem" 2>&1 | tee "$RUN/hostile_tls.out" || rc=$?
NCASES=$(grep -cE '^(ok|FAIL) ' "$RUN/hostile_tls.out" || true)
# Every hostile connection is gone on the server too, then the counters.
wait_until "[ \$(stats_get $STATS | awk '\$1 == \"connections\" {print \$2}') -eq 1 ]" 10 ||
	fail "(B) the hostile connections are still open on the server"
stats_get "$STATS" >"$RUN/gw/stats-after.txt"
stats_diff "$RUN/gw/stats-before.txt" "$RUN/gw/stats-after.txt" >"$RUN/gw/stats-diff.txt"
log "(B) server counters that changed: $(tr '\n' ';' <"$RUN/gw/stats-diff.txt")"
sleep 1 # one more probe after the last case
pinger_stop bg

iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
iketcpd_alive "$NS_C1" client || fail "iketcpd client died"
[ "$rc" -eq 0 ] || fail "hostile TLS cases failed (see above)"
accepted=$(stats_val "$RUN/gw/stats-diff.txt" accepted)
closed=$(stats_sum_delta "$RUN/gw/stats-diff.txt" '^closed_')
[ "$accepted" -eq "$NCASES" ] || fail "(B) the server accepted $accepted connections, expected $NCASES"
[ "$closed" -eq "$NCASES" ] || fail "(B) the server counted $closed closes, expected $NCASES"
# ... each under its reason: garbage -> handshake failed, truncated and slow
# -> handshake timeout, no prefix -> prefix timeout.
if [ "$NCASES" -eq 4 ] && grep -q '^closed_tls_handshake_timeout ' "$RUN/gw/stats-after.txt"; then
	for kv in closed_tls_handshake:1 closed_tls_handshake_timeout:2 closed_prefix_timeout:1; do
		[ "$(stats_val "$RUN/gw/stats-diff.txt" "${kv%:*}")" -eq "${kv#*:}" ] ||
			fail "(B) ${kv%:*} grew by $(stats_val "$RUN/gw/stats-diff.txt" "${kv%:*}"), expected ${kv#*:}"
	done
fi
[ "$PING_RECV" -gt 0 ] || fail "the background ping got no answer"
[ "$PING_LOST" -eq 0 ] || fail "the tunnel lost $PING_LOST of $PING_SENT pings during the bad cases"
sa_established "$NS_C1" || fail "initiator SA gone"
[ "$(swan "$NS_GW" --list-sas | grep -c ESTABLISHED)" -eq 1 ] ||
	fail "the responder does not have exactly one established IKE SA"
{ [ "$(udp_count "$NS_C1")" -eq 0 ] && [ "$(udp_count "$NS_C2")" -eq 0 ]; } || fail "UDP crossed a link"
ping_tunnel "$NS_C1" "$(inner_addr 1)" "$GW_INNER" 3 || fail "ping after the bad cases"
kill -USR1 "$(cat "$RUN/gw/iketcpd-server.pid")" 2>/dev/null || true
results_line "TLS errors: refusals (reason logged N times)$REFUSALS;" \
	"$NCASES hostile TLS openings closed and counted ($(sed -nE 's/^(ok|FAIL) +([a-z-]+) .* after ([0-9.]+s).*/\2 \3/p' "$RUN/hostile_tls.out" | paste -sd, -));" \
	"tunnel ping lost $PING_LOST/$PING_SENT"
log "PASS"
