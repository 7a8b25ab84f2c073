#!/bin/bash
# 10-tls-openssl-client: an independent TLS client (openssl s_client, with
# tls_ike_client.py doing RFC 9329 through its stdin/stdout) gets a framed
# IKE_SA_INIT response from strongSwan through the TLS server (issue #4).
# See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=SCRIPTDIR/../tls.sh
. "$(dirname "$0")/../tls.sh"

e2e_init
need_tls_iketcpd server
need_cmd openssl

GW=$(gw_addr 1)
PKI=$RUN/pki
tls_make_pki "$PKI" "$GW"
topo_basic
block_udp "$NS_C1"
charon_start "$NS_GW" responder
# TLS-only on 443; the plain port 4500 also accepts TLS (--sniff-tls yes, the
# default when a certificate is set; given here explicitly).
iketcpd_tls_server "$NS_GW" server "$TLS_PORT" --listen 0.0.0.0:4500 \
	--tls-cert "$PKI/gw.pem" --tls-key "$PKI/gw.key" --sniff-tls yes \
	--stats-socket "$RUN/gw/stats.sock"

# s_client_ike PORT WHAT: one exchange; output in s_client-PORT.out.
s_client_ike() {
	local port=$1 what=$2 out=$RUN/c1/s_client-$1.out t0 rc=0
	t0=$(now_ms)
	timeout 30 ip netns exec "$NS_C1" python3 "$E2E_DIR/tls_ike_client.py" "$GW" "$port" \
		--servername "$TLS_NAME" --cafile "$PKI/ca.pem" --timeout 10 >"$out" 2>&1 || rc=$?
	sed 's/^/    /' "$out"
	[ "$rc" -eq 0 ] || fail "$what: no valid framed IKE_SA_INIT response (exit $rc)"
	grep -q '^s_client: Verification: OK' "$out" || fail "$what: s_client did not report a verified certificate"
	log "ok: $what: $(sed -n 's/^s_client: Protocol version: //p' "$out"), $(sed -n 's/^s_client: Ciphersuite: //p' "$out"); response in $(($(now_ms) - t0)) ms: $(sed -n 's/^payloads: //p' "$out")"
}

log "(a) openssl s_client -> $GW:$TLS_PORT (TLS listener)"
s_client_ike "$TLS_PORT" "(a) TLS port $TLS_PORT"
log "(b) openssl s_client -> $GW:4500 (plain listener, TLS sniffed by its first byte)"
s_client_ike 4500 "(b) plain port 4500 with TLS"

# (c) the plain listener still speaks plain RFC 9329.
if [ -x "$IKETCP_CLI" ]; then
	out=$(nsx "$NS_C1" "$IKETCP_CLI" probe -t 5 "$GW:4500") || fail "(c) iketcp probe on 4500: exit $?: $out"
	grep -q "got IKE_SA_INIT response" <<<"$out" || fail "(c) probe: no IKE_SA_INIT response: $out"
	log "ok: (c) plain RFC 9329 (iketcp probe) on the sniffing port 4500 still answered"
else
	log "(c) iketcp CLI not built next to iketcpd: plain probe skipped"
fi

# The responder really answered: three IKE_SA_INIT requests reached it
# through the server (the half-open SAs expire by themselves).
n=$(grep -c 'parsed IKE_SA_INIT request' "$RUN/gw/charon.log" || true)
log "responder: $n IKE_SA_INIT requests parsed"
[ "$n" -ge 2 ] || fail "the responder parsed $n IKE_SA_INIT requests (expected at least 2)"
if [ -x "$IKETCP_CLI" ] && [ -S "$RUN/gw/stats.sock" ]; then
	stats_get "$RUN/gw/stats.sock" >"$RUN/gw/stats.txt"
	log "server counters: accepted $(stats_val "$RUN/gw/stats.txt" accepted), frames_ike $(stats_val "$RUN/gw/stats.txt" frames_ike), from_backend $(stats_val "$RUN/gw/stats.txt" from_backend)"
	[ "$(stats_val "$RUN/gw/stats.txt" frames_ike)" -ge 2 ] || fail "the server counted fewer than 2 IKE frames"
	# On the sniffing port: one TLS opening (b) and one plain (c, if run).
	if grep -q '^sniffed_tls ' "$RUN/gw/stats.txt"; then
		log "server counters: sniffed_tls $(stats_val "$RUN/gw/stats.txt" sniffed_tls), sniffed_plain $(stats_val "$RUN/gw/stats.txt" sniffed_plain), tls_handshakes $(stats_val "$RUN/gw/stats.txt" tls_handshakes)"
		[ "$(stats_val "$RUN/gw/stats.txt" sniffed_tls)" -eq 1 ] || fail "sniffed_tls is not 1"
		[ "$(stats_val "$RUN/gw/stats.txt" tls_handshakes)" -eq 2 ] || fail "tls_handshakes is not 2"
	fi
fi
iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
results_line "openssl s_client + IKE_SA_INIT through the TLS server: answered on 443 and on the sniffing plain port 4500"
log "PASS"
