# shellcheck shell=bash
# tests/e2e/tls.sh: helpers for the TLS and HTTP-proxy scenarios (issue #4:
# 08-tls-443, 09-http-proxy, 10-tls-openssl-client, 11-tls-errors).
# Sourced after lib.sh:
#
#   . "$(dirname "$0")/../lib.sh"
#   . "$(dirname "$0")/../tls.sh"
#
# What it adds:
#   need_tls_iketcpd        SKIP (77) unless iketcpd knows the TLS options
#   tls_make_pki DIR IP...  test CA, server certificate (SAN gw.iketcp.test +
#                           the IPs), an expired one, an unrelated CA
#   iketcpd_tls_server NS NAME PORT [ARGS...]
#                           "iketcpd server --listen-tls 0.0.0.0:PORT ARGS"
#   iketcpd_tls_client NS NAME HOST:PORT [ARGS...]
#                           "iketcpd client --udp 127.0.0.1:4501 --peer HOST:PORT
#                           --enable-tcp yes ARGS"
#   nft_only NS IFACE RULE  count and drop every packet on IFACE but the TCP
#                           that RULE (an nft match on the local side) allows
#   nft_only_count NS NAME  packets of a counter of that table
#   capture_start NS IFACE FILE / capture_stop FILE   tcpdump on a link
#   stats_get PATH          iketcpd's counters (iketcp stats) as "KEY VALUE"
#   stats_diff BEFORE AFTER "KEY DELTA" for every counter that changed
#
# The log of an iketcpd started here is $(dir_of NS)/iketcpd-NAME.log and its
# PID file iketcpd-NAME.pid, so lib.sh's iketcpd_alive / iketcpd_stop work
# with NAME, and the failure report prints the log.

# shellcheck disable=SC2034 # used by the scenarios
TLS_NAME=gw.iketcp.test
# shellcheck disable=SC2034
TLS_PORT=443
IKETCP_CLI=${IKETCP_CLI:-$(dirname "$IKETCPD")/iketcp}

# need_tls_iketcpd [server]: SKIP (77) when iketcpd is missing or does not
# have the TLS / proxy options yet (issue #4): the configuration check (-n)
# then reports an unknown option. Any other complaint (here: the files x and
# y do not exist) means the options are known. With "server", only the
# server's options are needed (10-tls-openssl-client has no iketcpd client).
# shellcheck disable=SC2120 # the argument is optional
need_tls_iketcpd() {
	need_iketcpd
	local out
	out=$("$IKETCPD" server --listen-tls 127.0.0.1:1 --tls-cert x --tls-key y -n 2>&1) || true
	if grep -Eqi 'unknown (option|key|keyword)' <<<"$out"; then
		skip "iketcpd has no TLS server options yet (issue #4): $out"
	fi
	[ "${1:-}" = server ] && return 0
	out=$("$IKETCPD" client --udp 127.0.0.1:1 --peer 127.0.0.1:443 --tls yes \
		--proxy http://127.0.0.1:3128 -n 2>&1) || true
	if grep -Eqi 'unknown (option|key|keyword)' <<<"$out"; then
		skip "iketcpd has no TLS / proxy client options yet (issue #4): $out"
	fi
}

# ---- certificates (openssl CLI) ---------------------------------------------------

# tls_make_pki DIR IP...: in DIR (EC P-256 keys, SHA-256):
#   ca.pem, ca.key          "iketcp e2e CA", valid 2 days
#   gw.pem, gw.key          leaf for gw.iketcp.test, SAN DNS:gw.iketcp.test and
#                           IP:<each IP>, serverAuth, signed by ca, valid 2 days
#   expired.pem, expired.key  the same names and CA, valid only in January 2020
#   other-ca.pem, other-ca.key  an unrelated CA (for "unknown CA")
tls_make_pki() {
	local dir=$1 ip san="DNS:$TLS_NAME"
	shift
	for ip in "$@"; do san="$san,IP:$ip"; done
	mkdir -p "$dir/db"
	(
		set -e
		cd "$dir"
		ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
		openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=iketcp e2e CA" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.pem -days 2 \
			-subj "/CN=iketcp e2e unrelated CA" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature \
			extendedKeyUsage=serverAuth "subjectAltName=$san" >leaf.ext
		openssl req -new "${ec[@]}" -keyout gw.key -out gw.csr -subj "/CN=$TLS_NAME"
		openssl x509 -req -in gw.csr -CA ca.pem -CAkey ca.key -set_serial 0x1001 -days 2 \
			-extfile leaf.ext -out gw.pem
		# An expired certificate needs explicit dates: "openssl ca" has them.
		openssl req -new "${ec[@]}" -keyout expired.key -out expired.csr -subj "/CN=$TLS_NAME"
		: >db/index.txt
		echo 2001 >db/serial
		cat >ca.cnf <<EOF
[ ca ]
default_ca = e2e
[ e2e ]
database = $dir/db/index.txt
serial = $dir/db/serial
new_certs_dir = $dir/db
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
EOF
		openssl ca -batch -notext -config ca.cnf -in expired.csr -out expired.pem \
			-startdate 20200101000000Z -enddate 20200201000000Z -extfile leaf.ext
	) >"$dir/openssl.out" 2>&1 || fail "tls_make_pki: openssl failed: $(tail -n 20 "$dir/openssl.out")"
	openssl verify -CAfile "$dir/ca.pem" -verify_hostname "$TLS_NAME" "$dir/gw.pem" >/dev/null ||
		fail "tls_make_pki: gw.pem does not verify"
	log "PKI in $dir: CA, gw.pem ($san), expired.pem, other-ca.pem"
}

# ---- iketcpd with TLS ----------------------------------------------------------------

# _listening NS PORT: a TCP socket listens on PORT in NS.
_listening() {
	[ -n "$(nsx "$1" ss -Hltn "sport = :$2")" ]
}

# iketcpd_tls_server NS NAME PORT [ARGS...]: "iketcpd server --listen-tls
# 0.0.0.0:PORT --backend 127.0.0.1:4500 -f -v ARGS" in NS; waits until PORT
# listens. ARGS carry --tls-cert/--tls-key and, if wanted, --listen (without
# one iketcpd also listens on its default, port 4500).
iketcpd_tls_server() {
	local ns=$1 name=$2 port=$3 d pid
	shift 3
	d=$(dir_of "$ns")
	setsid ip netns exec "$ns" "$IKETCPD" server --listen-tls "0.0.0.0:$port" \
		--backend 127.0.0.1:4500 -f -v "$@" >"$d/iketcpd-$name.log" 2>&1 &
	pid=$!
	track_pid "$pid"
	echo "$pid" >"$d/iketcpd-$name.pid"
	wait_until "! kill -0 $pid || _listening $ns $port" 10 ||
		fail "$ns: iketcpd server $name not listening on $port"
	kill -0 "$pid" 2>/dev/null || fail "$ns: iketcpd server $name exited: $(tail -n 20 "$d/iketcpd-$name.log")"
	log "$ns: iketcpd server $name up, PID $pid (--listen-tls 0.0.0.0:$port $*)"
}

# iketcpd_tls_client NS NAME HOST:PORT [ARGS...]: "iketcpd client --udp
# 127.0.0.1:4501 --peer HOST:PORT --enable-tcp yes -f -v ARGS" in NS.
iketcpd_tls_client() {
	local ns=$1 name=$2 peer=$3 d pid
	shift 3
	d=$(dir_of "$ns")
	setsid ip netns exec "$ns" "$IKETCPD" client --udp "127.0.0.1:$CLIENT_UDP_PORT" \
		--peer "$peer" --enable-tcp yes -f -v "$@" >"$d/iketcpd-$name.log" 2>&1 &
	pid=$!
	track_pid "$pid"
	echo "$pid" >"$d/iketcpd-$name.pid"
	wait_until "! kill -0 $pid || [ -n \"\$(nsx $ns ss -Hluan 'sport = :$CLIENT_UDP_PORT')\" ]" 10 ||
		fail "$ns: iketcpd client $name not bound to UDP $CLIENT_UDP_PORT"
	kill -0 "$pid" 2>/dev/null || fail "$ns: iketcpd client $name exited: $(tail -n 20 "$d/iketcpd-$name.log")"
	log "$ns: iketcpd client $name up, PID $pid (--peer $peer $*)"
}

# ---- nftables: one kind of TCP allowed, everything else counted and dropped ---------

# nft_only NS IFACE "MATCH_OUT" "MATCH_IN": table inet only in NS. Packets
# leaving IFACE that match MATCH_OUT (e.g. "ip daddr 1.2.3.4 tcp dport 443")
# are counted in allowed_out and pass, arriving ones that match MATCH_IN in
# allowed_in; every other packet on IFACE, of any protocol, is counted in
# other_out / other_in and dropped. Priority -5: after lib.sh's counting
# chains (-10), so udp_count still sees every UDP packet that tried.
nft_only() {
	local ns=$1 ifc=$2 mout=$3 min=$4
	nsx "$ns" nft -f - <<EOF
table inet only {
	counter allowed_out {}
	counter allowed_in {}
	counter other_out {}
	counter other_in {}
	chain out {
		type filter hook output priority -5; policy accept;
		oifname != "$ifc" accept
		$mout counter name "allowed_out" accept
		counter name "other_out" drop
	}
	chain in {
		type filter hook input priority -5; policy accept;
		iifname != "$ifc" accept
		$min counter name "allowed_in" accept
		counter name "other_in" drop
	}
}
EOF
	log "$ns: on $ifc only '$mout' / '$min' pass; everything else is counted and dropped"
}

# nft_only_count NS NAME: packets of a counter of table inet only.
nft_only_count() {
	nsx "$1" nft list counter inet only "$2" | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# nft_only_reset NS
nft_only_reset() {
	nsx "$1" nft reset counters table inet only >/dev/null
}

# nft_only_dump: failure hook, the counters of every namespace that has the table.
nft_only_dump() {
	local ns c
	for ns in "${_NETNS[@]}"; do
		nsx "$ns" nft list table inet only >/dev/null 2>&1 || continue
		echo "----- $ns: nft table only"
		for c in allowed_out allowed_in other_out other_in; do
			echo "  $c: $(nft_only_count "$ns" "$c") packets"
		done
	done
}

# ---- capture -------------------------------------------------------------------------

# capture_start NS IFACE FILE: tcpdump on IFACE in NS, every packet, written
# as it comes (-U, --immediate-mode: no packets held back in the kernel ring
# when it is stopped) to FILE; returns when tcpdump listens. -Z root: tcpdump
# would otherwise drop to its own user and could not write into the run
# directory.
capture_start() {
	local ns=$1 ifc=$2 f=$3 pid
	ip netns exec "$ns" tcpdump -i "$ifc" -n -U --immediate-mode -s 0 -Z root -w "$f" >"$f.out" 2>&1 &
	pid=$!
	track_pid "$pid"
	echo "$pid" >"$f.pid"
	wait_until "! kill -0 $pid || grep -q 'listening on' $f.out" 10 ||
		fail "tcpdump on $ns/$ifc did not start"
	kill -0 "$pid" 2>/dev/null || fail "tcpdump on $ns/$ifc exited: $(cat "$f.out")"
	log "$ns: capturing $ifc to $f"
}

# capture_stop FILE: stop it (SIGINT: tcpdump flushes and prints its counts).
capture_stop() {
	local f=$1 pid
	pid=$(cat "$f.pid")
	kill -INT "$pid" 2>/dev/null || true
	wait_until "! kill -0 $pid" 5 || _kill_pid "$pid"
	wait "$pid" 2>/dev/null || true
	log "capture stopped: $(grep -E 'captured|dropped by kernel' "$f.out" | tr '\n' ' ')"
}

# ---- iketcpd counters ------------------------------------------------------------------

# stats_get PATH: "KEY VALUE" lines from the stats-socket (server|client
# NAME KEY VALUE -> KEY VALUE; the sections are told apart by the caller).
stats_get() {
	"$IKETCP_CLI" stats "$1" | awk 'NF == 4 && ($1 == "server" || $1 == "client") {print $3, $4}'
}

# stats_diff BEFORE AFTER: "KEY DELTA" for every counter that changed
# (files of stats_get output).
stats_diff() {
	awk 'NR == FNR {b[$1] = $2; next} {d = $2 - b[$1]; if (d != 0) print $1, d}' "$1" "$2"
}

# stats_val FILE KEY: one counter from a stats_get file (0 when absent).
stats_val() {
	awk -v k="$2" '$1 == k {v = $2} END {print v + 0}' "$1"
}

# stats_sum_delta DIFF REGEX: sum of the deltas of the keys matching REGEX.
stats_sum_delta() {
	awk -v re="$2" '$1 ~ re {s += $2} END {print s + 0}' "$1"
}
