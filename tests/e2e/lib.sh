# shellcheck shell=bash
# tests/e2e/lib.sh: shared helpers for the end-to-end scenarios.
#
# Sourced by every tests/e2e/NN-name/run.sh. It builds network namespaces
# with real strongSwan daemons (charon with kernel-libipsec, so no kernel ESP
# is needed) and, for most scenarios, iketcpd between them:
#
#   <prefix>-cN  client host N: initiator charon (inner 10.1.0.N/32 on lo),
#                iketcpd client (UDP 127.0.0.1:4501 -> TCP gw:4500),
#                nftables table "e2e" that counts (and can drop) UDP on eth0
#   <prefix>-gw  server host: responder charon (inner 10.2.0.1/32 on lo,
#                UDP 500/4500 on all addresses), iketcpd server
#                (TCP 0.0.0.0:4500 -> UDP 127.0.0.1:4500)
#
# Client N is joined to the gateway by its own veth pair: "eth0" in cN
# (192.168.<76+N>.1/24) and "cN" in gw (192.168.<76+N>.2/24); client 1 is
# therefore 192.168.77.1 <-> 192.168.77.2. See tests/e2e/README.md.
#
# Everything a scenario starts is recorded (PID + start time, namespace
# names) and an EXIT trap kills and deletes all of it, also on failure,
# timeout or ctrl-c. When E2E_REGISTRY names a file (run-all.sh does that),
# the same records are appended there so that run-all.sh can clean up after
# a scenario that was killed too hard to run its own trap.
#
# Environment:
#   IKETCPD            the gateway binary (default: $IKETCP_BUILD_DIR/iketcpd,
#                      else build/iketcpd; relative paths are taken from the
#                      repository root)
#   E2E_KEEP=1         keep the run directory (configs, logs) even on success
#   E2E_PCAP_DIR       where scenarios that capture (01) copy their pcap
#   E2E_VERBOSE=1      trace every command (set -x)
#   E2E_LOG_TAIL       lines of each log printed on failure (default 60)
#   E2E_RESULTS        file that scenarios append measurements to
#                      (default build/e2e-results.txt)
#   E2E_SERVER_LISTEN  iketcpd server --listen (default 0.0.0.0:4500)

set -eu
set -o pipefail
[ "${E2E_VERBOSE:-0}" = 1 ] && set -x

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
SCENARIO=$(basename "$(cd "$(dirname "$0")" && pwd)")
PREFIX=${E2E_PREFIX:-ike$$}

# The gateways run as root in the namespaces, without user (allow-root).
export IKETCPD_ALLOW_ROOT=1

_ike=${IKETCPD:-${IKETCP_BUILD_DIR:-build}/iketcpd}
case "$_ike" in
/*) IKETCPD=$_ike ;;
*) IKETCPD=$ROOT/$_ike ;;
esac
unset _ike

CHARON=${CHARON:-/usr/lib/ipsec/charon}
# The charon plugin list (DEPS_CHARON_PLUGINS) lives next to the packages
# that provide each plugin, so that a missing one is named by its package.
# shellcheck source=ci/deps.sh
. "$ROOT/ci/deps.sh"
E2E_RESULTS=${E2E_RESULTS:-$ROOT/build/e2e-results.txt}
E2E_SERVER_LISTEN=${E2E_SERVER_LISTEN:-0.0.0.0:4500}
PSK=${E2E_PSK:-iketcp-e2e-not-a-secret-0123456789}

# Ports used by the initiators and iketcpd clients.
CLIENT_UDP_PORT=4501 # iketcpd client --udp 127.0.0.1:4501
GW_TCP_PORT=4500     # iketcpd server --listen ...:4500

_PIDS=()    # every background process we started, newest last
_NETNS=()   # every namespace we created
_FAILED_HOOKS=()
RUN=""
T0=${EPOCHREALTIME//[!0-9]/}

# ---- logging, failing, skipping ---------------------------------------------

# now_ms: wall clock in milliseconds.
now_ms() {
	local t=${EPOCHREALTIME//[!0-9]/}
	echo $((t / 1000))
}

# elapsed: seconds since the scenario started, e.g. 12.345
elapsed() {
	local t=${EPOCHREALTIME//[!0-9]/}
	local ms=$(((t - T0) / 1000))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

log() {
	printf '[%s +%ss] %s\n' "$SCENARIO" "$(elapsed)" "$*"
}

fail() {
	log "FAIL: $*" >&2
	exit 1
}

skip() {
	log "SKIP: $*"
	exit 77
}

# ---- the run directory, the registry and the cleanup trap -------------------

# _reg KIND VALUE: record something to clean up in the run-all registry.
_reg() {
	[ -n "${E2E_REGISTRY:-}" ] || return 0
	echo "$1 $2" >>"$E2E_REGISTRY"
}

# _starttime PID: field 22 of /proc/PID/stat (start time in clock ticks),
# used to make sure a PID was not reused before we kill it.
_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}

# track_pid PID: remember a process to kill at the end.
track_pid() {
	local st
	_PIDS+=("$1")
	st=$(_starttime "$1" || echo 0)
	_reg pid "$1 $st"
}

# _kill_pid PID: TERM, wait up to 3 s, then KILL. Only PIDs we started.
_kill_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		# A zombie child of ours counts as gone.
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
		log "cleanup: PID $pid ignored TERM, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# on_failure CMD: run CMD (a function name) before the log dump on failure.
on_failure() {
	_FAILED_HOOKS+=("$1")
}

# dump_logs: print the tail of every log of this run.
dump_logs() {
	local n=${E2E_LOG_TAIL:-60} f ns
	[ -n "$RUN" ] && [ -d "$RUN" ] || return 0
	for ns in "${_NETNS[@]}"; do
		[ -e "/run/netns/$ns" ] || continue
		[ -e "$(dir_of "$ns")/strongswan.conf" ] || continue
		echo "----- $ns: swanctl --list-sas"
		SWAN_TIMEOUT=5 swan "$ns" --list-sas 2>&1 | head -n 40 || true
		echo "----- $ns: sockets"
		ip netns exec "$ns" ss -tuanp 2>&1 | head -n 40 || true
		if ip netns exec "$ns" nft list table inet e2e >/dev/null 2>&1; then
			echo "----- $ns: nft counters"
			local c
			for c in udp_in udp_out udp_drop_in udp_drop_out tcp4500_in tcp4500_out; do
				echo "  $c: $(nft_count "$ns" "$c") packets"
			done
		fi
	done
	while IFS= read -r f; do
		echo "----- last $n lines of ${f#"$RUN"/}"
		tail -n "$n" "$f" || true
	done < <(find "$RUN" -type f \( -name '*.log' -o -name '*.out' \) | sort)
}

_cleanup() {
	local rc=$? i ns h
	set +e
	trap - EXIT INT TERM HUP
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		log "scenario failed (exit code $rc); state and logs follow"
		for h in "${_FAILED_HOOKS[@]}"; do "$h"; done
		dump_logs >&2
	fi
	for ((i = ${#_PIDS[@]} - 1; i >= 0; i--)); do
		_kill_pid "${_PIDS[$i]}"
	done
	for ns in "${_NETNS[@]}"; do
		# Anything still inside (e.g. a helper that forked) started from us.
		for i in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$i" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
	if [ -n "$RUN" ] && [ -d "$RUN" ]; then
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] || [ "${E2E_KEEP:-0}" = 1 ]; then
			log "run directory kept: $RUN"
		else
			rm -rf "$RUN"
		fi
	fi
	exit "$rc"
}

# e2e_init: checks and the run directory. Every scenario calls it first.
e2e_init() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	local c missing=()
	for c in ip nft ss ping swanctl timeout python3 "$CHARON"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	for c in $DEPS_CHARON_PLUGINS; do
		[ -e "$DEPS_PLUGIN_DIR/libstrongswan-$c.so" ] ||
			missing+=("charon plugin $c ($(deps_plugin_package "$c"))")
	done
	[ -c /dev/net/tun ] || missing+=("/dev/net/tun")
	[ "${#missing[@]}" -eq 0 ] || fail "missing: ${missing[*]} (run tests/e2e/run-all.sh to install)"
	RUN=$(mktemp -d "/tmp/iketcp-e2e.${SCENARIO%%-*}.XXXXXX")
	trap _cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	log "prefix $PREFIX, run directory $RUN"
}

# need_iketcpd: SKIP (77) when the gateway binary is not built yet.
need_iketcpd() {
	[ -x "$IKETCPD" ] || skip "iketcpd not built ($IKETCPD); set IKETCPD=path"
}

# need_cmd CMD...: fail when a command is missing.
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || fail "command '$c' not found"
	done
}

# ---- waiting -----------------------------------------------------------------

# wait_until "CMD" [TIMEOUT_S] [INTERVAL_S]: poll CMD (eval'd, output
# discarded) until it succeeds. Returns 1 after TIMEOUT_S (default 10).
wait_until() {
	local cmd=$1 timeout=${2:-10} interval=${3:-0.2}
	local deadline=$(($(now_ms) + timeout * 1000))
	while :; do
		if eval "$cmd" >/dev/null 2>&1; then
			return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep "$interval"
	done
}

# must_wait "CMD" TIMEOUT "what": wait_until or fail with a message.
must_wait() {
	local t0
	t0=$(now_ms)
	wait_until "$1" "$2" || fail "timeout after $2 s waiting for: $3"
	log "ok: $3 ($(($(now_ms) - t0)) ms)"
}

# ---- namespaces and links ------------------------------------------------------

NS_GW="$PREFIX-gw"
NS_C1="$PREFIX-c1"

# ns_of NAME: the namespace of host NAME (gw, c1, c2, ...).
ns_of() {
	echo "$PREFIX-$1"
}

# dir_of NS: the run directory of a namespace (configs, logs, sockets).
dir_of() {
	echo "$RUN/${1#"$PREFIX"-}"
}

# nsx NS CMD...: run a command in a namespace.
nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# ns_create NS: a namespace with lo up and its own run directory.
ns_create() {
	local ns=$1
	ip netns add "$ns"
	_NETNS+=("$ns")
	_reg netns "$ns"
	ip -n "$ns" link set lo up
	mkdir -p "$(dir_of "$ns")/run"
}

# client_addr N / gw_addr N: the two ends of client N's link.
client_addr() {
	echo "192.168.$((76 + $1)).1"
}
gw_addr() {
	echo "192.168.$((76 + $1)).2"
}
# inner_addr N: client N's inner (tunnel) address; the gateway's is 10.2.0.1.
inner_addr() {
	echo "10.1.0.$1"
}
GW_INNER=10.2.0.1

# topo_gw: the server host.
topo_gw() {
	ns_create "$NS_GW"
	ip -n "$NS_GW" addr add "$GW_INNER/32" dev lo
}

# topo_client N: client host N, linked to the gateway by a veth pair, with
# its inner address and the nftables table "e2e" (counting, not dropping).
topo_client() {
	local n=$1 ns
	ns=$(ns_of "c$n")
	ns_create "$ns"
	ip -n "$ns" link add eth0 type veth peer name "c$n" netns "$NS_GW"
	nsx "$ns" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
	nsx "$NS_GW" sysctl -qw "net.ipv6.conf.c$n.disable_ipv6=1"
	ip -n "$ns" addr add "$(client_addr "$n")/24" dev eth0
	ip -n "$NS_GW" addr add "$(gw_addr "$n")/24" dev "c$n"
	ip -n "$ns" link set eth0 up
	ip -n "$NS_GW" link set "c$n" up
	ip -n "$ns" addr add "$(inner_addr "$n")/32" dev lo
	nft_setup "$ns" eth0
}

# topo_basic: gw + client 1 (NS_GW, NS_C1), link checked with ping.
topo_basic() {
	topo_gw
	topo_client 1
	must_wait "nsx $NS_C1 ping -c1 -W1 $(gw_addr 1)" 10 "link c1 -> gw"
}

# ---- nftables: count UDP / TCP 4500 on a link, optionally drop UDP -------------

# nft_setup NS IFACE: table inet e2e with named counters:
#   udp_in, udp_out          every UDP packet on IFACE (before any drop)
#   tcp4500_in, tcp4500_out  TCP to/from port 4500 on IFACE
#   udp_drop_in, udp_drop_out  packets dropped by the UDP block (block_udp)
nft_setup() {
	local ns=$1 ifc=$2
	nsx "$ns" nft -f - <<EOF
table inet e2e {
	counter udp_in {}
	counter udp_out {}
	counter tcp4500_in {}
	counter tcp4500_out {}
	counter udp_drop_in {}
	counter udp_drop_out {}
	chain count_in {
		type filter hook input priority -10; policy accept;
		iifname "$ifc" meta l4proto udp counter name "udp_in"
		iifname "$ifc" tcp sport $GW_TCP_PORT counter name "tcp4500_in"
	}
	chain count_out {
		type filter hook output priority -10; policy accept;
		oifname "$ifc" meta l4proto udp counter name "udp_out"
		oifname "$ifc" tcp dport $GW_TCP_PORT counter name "tcp4500_out"
	}
	chain block_in {
		type filter hook input priority 0; policy accept;
	}
	chain block_out {
		type filter hook output priority 0; policy accept;
	}
}
EOF
	echo "$ifc" >"$(dir_of "$ns")/nft-iface"
}

# block_udp NS: drop all UDP on the link in both directions (TCP, ICMP pass).
block_udp() {
	local ns=$1 ifc
	ifc=$(cat "$(dir_of "$ns")/nft-iface")
	nsx "$ns" nft add rule inet e2e block_in iifname "$ifc" meta l4proto udp counter name udp_drop_in drop
	nsx "$ns" nft add rule inet e2e block_out oifname "$ifc" meta l4proto udp counter name udp_drop_out drop
	log "$ns: UDP on $ifc is now dropped"
}

# unblock_udp NS
unblock_udp() {
	nsx "$1" nft flush chain inet e2e block_in
	nsx "$1" nft flush chain inet e2e block_out
	log "$1: UDP block removed"
}

# nft_count NS NAME: packets of a named counter.
nft_count() {
	nsx "$1" nft list counter inet e2e "$2" | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# udp_count NS: UDP packets that tried to cross the link (both directions).
udp_count() {
	echo $(($(nft_count "$1" udp_in) + $(nft_count "$1" udp_out)))
}

# udp_drop_count NS: UDP packets dropped by block_udp (both directions).
udp_drop_count() {
	echo $(($(nft_count "$1" udp_drop_in) + $(nft_count "$1" udp_drop_out)))
}

# tcp4500_count NS: TCP packets to/from port 4500 on the link.
tcp4500_count() {
	echo $(($(nft_count "$1" tcp4500_in) + $(nft_count "$1" tcp4500_out)))
}

# nft_reset NS: zero every counter.
nft_reset() {
	nsx "$1" nft reset counters table inet e2e >/dev/null
}

# ---- strongSwan ----------------------------------------------------------------

# swan NS CMD [ARGS...]: swanctl against the charon of NS. swanctl wants the
# command first and --uri after it ("swanctl --uri X --list-sas" is refused).
swan() {
	local ns=$1 d
	d=$(dir_of "$ns")
	shift
	local cmd=$1
	shift
	STRONGSWAN_CONF=$d/strongswan.conf timeout "${SWAN_TIMEOUT:-20}" \
		ip netns exec "$ns" swanctl "$cmd" --uri "unix://$d/charon.vici" "$@"
}

# charon_start NS ROLE [KEY=VALUE ...]: write strongswan.conf and swanctl.conf
# for an initiator or responder, start charon in NS, load the config.
# Keys (defaults in brackets):
#   id=NAME          own IKE identity [c<N>.iketcp.test / gw.iketcp.test]
#   remote=ADDR      initiator: remote_addrs [127.0.0.1]
#   rport=PORT       initiator: remote_port [4501]
#   lport=PORT       initiator: local_port [4500]
#   local_ts=, remote_ts=   traffic selectors [own inner/32, 10.2.0.0/24 |
#                    10.2.0.0/24, 10.1.0.0/24]
#   mobike=yes|no    [yes, strongSwan's default]
#   ike_rekey=N      IKE rekey_time in seconds, e.g. 30 [strongSwan's 4h]
#   child_rekey=N    CHILD rekey_time in seconds, e.g. 20 [strongSwan's 1h]
#                    (no random jitter; hard lifetimes set well after)
#   dpd=T            dpd_delay [0s = off]
#   start=none|trap|start  CHILD start_action [none]
#   dpd_action=clear|trap|restart  CHILD dpd_action [strongSwan's clear]
#   unique=never|no|replace|keep  responder: unique [never]
#   fwmark=MARK      full tunnels: kernel-netlink.fwmark = !MARK (the rule to
#                    table 220 skips packets with MARK) and
#                    socket-default.fwmark = MARK [none]
# The connection is named "e2e", its child "net".
charon_start() {
	local ns=$1 role=$2 d kv k v
	shift 2
	d=$(dir_of "$ns")
	local host=${ns#"$PREFIX"-}
	local id remote=127.0.0.1 rport="$CLIENT_UDP_PORT" lport=4500 mobike=yes
	local ike_rekey="" child_rekey="" dpd=0s start=none local_ts remote_ts fwmark=""
	local dpd_action="" unique=never
	if [ "$role" = initiator ]; then
		id="$host.iketcp.test"
		local_ts="$(inner_addr "${host#c}")/32"
		remote_ts=10.2.0.0/24
	else
		id=gw.iketcp.test
		local_ts=10.2.0.0/24
		remote_ts=10.1.0.0/24
	fi
	for kv in "$@"; do
		k=${kv%%=*}
		v=${kv#*=}
		case "$k" in
		id) id=$v ;;
		remote) remote=$v ;;
		rport) rport=$v ;;
		lport) lport=$v ;;
		local_ts) local_ts=$v ;;
		remote_ts) remote_ts=$v ;;
		mobike) mobike=$v ;;
		ike_rekey) ike_rekey=$v ;;
		child_rekey) child_rekey=$v ;;
		dpd) dpd=$v ;;
		dpd_action) dpd_action=$v ;;
		unique) unique=$v ;;
		start) start=$v ;;
		fwmark) fwmark=$v ;;
		*) fail "charon_start: unknown option $kv" ;;
		esac
	done

	# swanctl --load-all also reads credentials from these folders.
	mkdir -p "$d"/swanctl/{x509,x509ca,x509ocsp,x509aa,x509ac,x509crl,pubkey,private,rsa,ecdsa,bliss,pkcs8,pkcs12}
	cat >"$d/strongswan.conf" <<EOF
# generated by tests/e2e/lib.sh for $ns ($role)
charon {
	# Explicit plugin list: kernel-libipsec (ESP in user space through the
	# ipsec0 TUN device) before kernel-netlink; kdf is required.
	load = $DEPS_CHARON_PLUGINS
	# Fail fast: ~25 s to give up instead of ~165 s.
	retransmit_tries = 3
	retransmit_timeout = 2.0
	install_virtual_ip = no
	plugins {
		vici {
			socket = unix://$d/charon.vici
		}
$(if [ -n "$fwmark" ]; then
		printf '\t\tkernel-netlink {\n\t\t\tfwmark = !%s\n\t\t}\n' "$fwmark"
		printf '\t\tsocket-default {\n\t\t\tfwmark = %s\n\t\t}\n' "$fwmark"
	fi)
	}
	filelog {
		charon {
			path = $d/charon.log
			time_format = %H:%M:%S
			ike_name = yes
			append = no
			flush_line = yes
			default = 1
			ike = 2
			knl = 1
			net = 1
			cfg = 1
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
}
swanctl {
	load = random nonce openssl pem pkcs1 x509 pubkey
}
EOF

	{
		echo "# generated by tests/e2e/lib.sh for $ns ($role)"
		echo "connections {"
		echo "	e2e {"
		echo "		version = 2"
		echo "		mobike = $mobike"
		echo "		dpd_delay = $dpd"
		if [ "$role" = initiator ]; then
			echo "		local_addrs = %any"
			echo "		remote_addrs = $remote"
			echo "		local_port = $lport"
			echo "		remote_port = $rport"
		else
			echo "		local_addrs = %any"
			echo "		remote_addrs = %any"
			echo "		unique = $unique"
		fi
		if [ -n "$ike_rekey" ]; then
			# Rekey exactly then (no jitter); hard limit well after it.
			echo "		rekey_time = ${ike_rekey%s}s"
			echo "		over_time = ${ike_rekey%s}s"
			echo "		rand_time = 0s"
		fi
		echo "		local {"
		echo "			auth = psk"
		echo "			id = $id"
		echo "		}"
		echo "		remote {"
		echo "			auth = psk"
		[ "$role" = initiator ] && echo "			id = gw.iketcp.test"
		echo "		}"
		echo "		children {"
		echo "			net {"
		echo "				local_ts = $local_ts"
		echo "				remote_ts = $remote_ts"
		echo "				start_action = $start"
		[ -n "$dpd_action" ] && echo "				dpd_action = $dpd_action"
		if [ -n "$child_rekey" ]; then
			echo "				rekey_time = ${child_rekey%s}s"
			echo "				life_time = $((2 * ${child_rekey%s}))s"
			echo "				rand_time = 0s"
		fi
		echo "			}"
		echo "		}"
		echo "	}"
		echo "}"
		echo "secrets {"
		echo "	ike-e2e {"
		echo "		secret = \"$PSK\""
		echo "	}"
		echo "}"
	} >"$d/swanctl/swanctl.conf"

	# charon's pidfile is fixed at /var/run/charon.pid: give it a private /run
	# (ip netns exec runs the command in its own mount namespace).
	# shellcheck disable=SC2016 # $1 and $2 are for the inner sh
	# setsid: a signal to our process group (timeout, ctrl-c) leaves the
	# daemons alive for the failure report; the EXIT trap stops them.
	STRONGSWAN_CONF=$d/strongswan.conf setsid \
		ip netns exec "$ns" sh -c 'mount --bind "$1" /run && exec "$2"' sh "$d/run" "$CHARON" \
		>"$d/charon.out" 2>&1 &
	track_pid $!
	echo $! >"$d/charon.pid"
	wait_until "[ -S $d/charon.vici ] && swan $ns --stats" 15 ||
		fail "$ns: charon did not come up (see $d/charon.out, $d/charon.log)"
	# A plugin that fails to load is only a warning to charon; the first sign
	# would be an IKE_SA_INIT with no DH group. Stop here, naming the package.
	deps_charon_loaded "$SCENARIO: $ns" "$(swan "$ns" --stats 2>&1)" ||
		fail "$ns: charon lacks plugins (see the lines above)"
	swan "$ns" --load-all --file "$d/swanctl/swanctl.conf" >"$d/swanctl-load.out" 2>&1 ||
		fail "$ns: swanctl --load-all failed: $(cat "$d/swanctl-load.out")"
	log "$ns: charon ($role) up, PID $(cat "$d/charon.pid")"
}

# charon_alive NS
charon_alive() {
	kill -0 "$(cat "$(dir_of "$1")/charon.pid")" 2>/dev/null
}

# charon_stop NS: stop one charon (TERM: it sends DELETEs for its SAs).
charon_stop() {
	local d
	d=$(dir_of "$1")
	_kill_pid "$(cat "$d/charon.pid")"
}

# sa_established NS: the IKE_SA "e2e" is ESTABLISHED and a CHILD_SA INSTALLED.
sa_established() {
	local out
	out=$(swan "$1" --list-sas --ike e2e 2>/dev/null) || return 1
	grep -q ESTABLISHED <<<"$out" && grep -q INSTALLED <<<"$out"
}

# sas_match NS REGEX: swanctl --list-sas output of NS matches REGEX (grep -E).
# (Output captured first: with pipefail, "swan | grep -q" could fail on
# SIGPIPE when grep exits early.)
sas_match() {
	local out
	out=$(swan "$1" --list-sas 2>/dev/null) || return 1
	grep -Eq -- "$2" <<<"$out"
}

# no_sa NS: swanctl works and lists no IKE SA at all.
no_sa() {
	local out
	out=$(swan "$1" --list-sas 2>/dev/null) || return 1
	! grep -Eq 'ESTABLISHED|CONNECTING|REKEYING|DELETING' <<<"$out"
}

# initiate NS [TIMEOUT]: start the CHILD_SA "net" and wait for both ends.
initiate() {
	local ns=$1 t=${2:-40} d t0
	d=$(dir_of "$ns")
	t0=$(now_ms)
	log "$ns: initiating"
	if ! SWAN_TIMEOUT=$((t + 5)) swan "$ns" --initiate --child net --timeout "$t" \
		>>"$d/initiate.out" 2>&1; then
		fail "$ns: swanctl --initiate failed (see $d/initiate.out)"
	fi
	must_wait "sa_established $ns" 10 "$ns: IKE_SA ESTABLISHED + CHILD_SA INSTALLED"
	log "$ns: tunnel up in $(($(now_ms) - t0)) ms"
}

# ike_spis NS / child_spis NS: current SPIs (for rekey checks).
ike_spis() {
	swan "$1" --list-sas --ike e2e 2>/dev/null | awk '/^e2e: #/ {print $5, $6}'
}
child_spis() {
	swan "$1" --list-sas --ike e2e 2>/dev/null | awk '$1 == "in" || $1 == "out" {print $1, $2}' |
		tr -d ','
}

# ---- iketcpd ---------------------------------------------------------------------

# iketcpd_server NS [ARGS...]: start "iketcpd server" in the foreground mode,
# listening on E2E_SERVER_LISTEN, relaying to the local charon.
iketcpd_server() {
	local ns=$1 d
	shift
	d=$(dir_of "$ns")
	setsid ip netns exec "$ns" "$IKETCPD" server --listen "$E2E_SERVER_LISTEN" \
		--backend 127.0.0.1:4500 -f -v "$@" >"$d/iketcpd-server.log" 2>&1 &
	track_pid $!
	echo $! >"$d/iketcpd-server.pid"
	wait_until "! kill -0 $! || [ -n \"\$(nsx $ns ss -Hltn 'sport = :$GW_TCP_PORT')\" ]" 10 ||
		fail "$ns: iketcpd server not listening on $GW_TCP_PORT"
	kill -0 $! 2>/dev/null || fail "$ns: iketcpd server exited: $(tail -n 20 "$d/iketcpd-server.log")"
	log "$ns: iketcpd server up, PID $! ($*)"
}

# iketcpd_client NS PEER_HOST [ARGS...]: start "iketcpd client" with
# --udp 127.0.0.1:4501 --peer PEER_HOST:4500 and the given extra flags
# (e.g. --enable-tcp yes).
iketcpd_client() {
	local ns=$1 peer=$2 d
	shift 2
	d=$(dir_of "$ns")
	setsid ip netns exec "$ns" "$IKETCPD" client --udp "127.0.0.1:$CLIENT_UDP_PORT" \
		--peer "$peer:$GW_TCP_PORT" -f -v "$@" >"$d/iketcpd-client.log" 2>&1 &
	track_pid $!
	echo $! >"$d/iketcpd-client.pid"
	wait_until "! kill -0 $! || [ -n \"\$(nsx $ns ss -Hluan 'sport = :$CLIENT_UDP_PORT')\" ]" 10 ||
		fail "$ns: iketcpd client not bound to UDP $CLIENT_UDP_PORT"
	kill -0 $! 2>/dev/null || fail "$ns: iketcpd client exited: $(tail -n 20 "$d/iketcpd-client.log")"
	log "$ns: iketcpd client up, PID $! (--peer $peer:$GW_TCP_PORT $*)"
}

# iketcpd_alive NS server|client
iketcpd_alive() {
	kill -0 "$(cat "$(dir_of "$1")/iketcpd-$2.pid")" 2>/dev/null
}

# iketcpd_stop NS server|client
iketcpd_stop() {
	_kill_pid "$(cat "$(dir_of "$1")/iketcpd-$2.pid")"
}

# tcp4500_conns NS: established TCP connections to port 4500 seen in NS.
tcp4500_conns() {
	nsx "$1" ss -Htn state established "( dport = :$GW_TCP_PORT )" | wc -l
}

# ---- captures: the Wireshark dissector on a real session -------------------------

# pcap_start NS IFACE FILE: tcpdump of TCP port $GW_TCP_PORT on IFACE in NS
# into FILE, each packet written as it comes; returns once it listens.
pcap_start() {
	local ns=$1 ifc=$2 file=$3
	setsid ip netns exec "$ns" tcpdump -i "$ifc" --immediate-mode -U -s 0 -w "$file" \
		"tcp port $GW_TCP_PORT" >"$file.log" 2>&1 &
	track_pid $!
	PCAP_PID=$!
	wait_until "grep -q 'listening on' '$file.log'" 10 || fail "$ns: tcpdump did not start: $(cat "$file.log")"
}

# pcap_stop: ends the tcpdump of pcap_start.
pcap_stop() {
	_kill_pid "$PCAP_PID"
}

# pcap_check FILE: tools/wireshark/iketcp.lua under tshark finds the
# prefix, IKE_SA_INIT and IKE_AUTH as request and response (in that order),
# and at least 2 ESP frames each way in FILE. The file is kept in the run
# directory (E2E_KEEP=1) and copied to E2E_PCAP_DIR when that is set.
pcap_check() {
	local file=$1 out ike esp_in esp_out
	out=$(tshark -n -r "$file" -X "lua_script:$ROOT/tools/wireshark/iketcp.lua" \
		-o "iketcp.tcp_port:$GW_TCP_PORT" -Y iketcp -T fields -E occurrence=a -E aggregator=, \
		-e tcp.dstport -e iketcp.prefix -e isakmp.exchangetype -e isakmp.flag_r -e esp.spi 2>&1) ||
		fail "tshark on $file: $out"
	if [ -n "${E2E_PCAP_DIR:-}" ]; then
		mkdir -p "$E2E_PCAP_DIR"
		cp "$file" "$E2E_PCAP_DIR/"
	fi
	! grep -q "Lua Error" <<<"$out" || fail "dissector error on $file: $out"
	grep -q "	IKETCP	" <<<"$out" || fail "$file: no IKETCP prefix decoded"
	ike=$(awk -F'\t' '$3 != "" { printf "%s/%s ", $3, $4 }' <<<"$out")
	[[ "$ike" == "34/0 34/1 35/0 35/1 "* ]] || fail "$file: IKE exchanges [$ike], want 34/0 34/1 35/0 35/1 first"
	esp_out=$(awk -F'\t' -v p="$GW_TCP_PORT" '$1 == p && $5 != "" { n += split($5, a, ",") } END { print n + 0 }' <<<"$out")
	esp_in=$(awk -F'\t' -v p="$GW_TCP_PORT" '$1 != p && $5 != "" { n += split($5, a, ",") } END { print n + 0 }' <<<"$out")
	if [ "$esp_out" -lt 2 ] || [ "$esp_in" -lt 2 ]; then
		fail "$file: ESP frames out $esp_out, in $esp_in (want >= 2 each)"
	fi
	log "dissector on $file: prefix, IKE [$ike], ESP frames out $esp_out, in $esp_in"
}

# ---- traffic ----------------------------------------------------------------------

# ping_recovery NS SRC DST T0_MS MAX_MS: single pings (each waits 0.5 s)
# until one is answered; sets RECOVERED to the ms from T0_MS (e.g. the
# moment a connection was killed) to that answer. Returns 1 if none was
# answered within MAX_MS.
ping_recovery() {
	local ns=$1 src=$2 dst=$3 t0=$4 max=$5
	RECOVERED=""
	while [ $(($(now_ms) - t0)) -lt "$max" ]; do
		if nsx "$ns" ping -n -q -c1 -W 0.5 -I "$src" "$dst" >/dev/null 2>&1; then
			RECOVERED=$(($(now_ms) - t0))
			return 0
		fi
	done
	return 1
}

# ping_tunnel NS SRC DST COUNT: COUNT pings through the tunnel, 0.2 s apart;
# succeeds only if every one was answered. Sets PING_RECV.
ping_tunnel() {
	local ns=$1 src=$2 dst=$3 count=$4 out
	out=$(nsx "$ns" ping -n -q -c "$count" -i 0.2 -W 2 -I "$src" "$dst" 2>&1) || true
	PING_RECV=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
	PING_RECV=${PING_RECV:-0}
	log "$ns: ping $src -> $dst: $PING_RECV/$count answered"
	[ "$PING_RECV" -eq "$count" ]
}

# pinger_start NAME NS SRC DST [INTERVAL]: continuous ping in the background
# (ping -D -O: timestamps, and "no answer yet" for every unanswered probe).
pinger_start() {
	local name=$1 ns=$2 src=$3 dst=$4 interval=${5:-0.2}
	ip netns exec "$ns" ping -n -D -O -i "$interval" -W 1 -I "$src" "$dst" \
		>"$RUN/ping-$name.out" 2>&1 &
	track_pid $!
	echo $! >"$RUN/ping-$name.pid"
}

# pinger_stop NAME: stop it and set PING_SENT, PING_RECV, PING_LOST, from
# its output. Probes still in flight at the stop are not counted as lost:
# a probe is lost only when ping reported "no answer yet" for it and no
# reply for it ever came.
pinger_stop() {
	local name=$1 pid f
	f=$RUN/ping-$name.out
	pid=$(cat "$RUN/ping-$name.pid")
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	PING_RECV=$(grep -o 'icmp_seq=[0-9]* ttl' "$f" | sort -u | wc -l)
	PING_LOST=$(awk '
		/no answer yet for icmp_seq=/ { sub(/.*icmp_seq=/, ""); noans[$1] = 1 }
		/bytes from .* icmp_seq=/ { s = $0; sub(/.*icmp_seq=/, "", s); sub(/ .*/, "", s); got[s] = 1 }
		END { n = 0; for (s in noans) if (!(s in got)) n++; print n }' "$f")
	PING_SENT=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$f")
	PING_SENT=${PING_SENT:-$((PING_RECV + PING_LOST))}
	log "ping $name: sent $PING_SENT, answered $PING_RECV, lost $PING_LOST"
}

# results_line TEXT: append a measurement for the docs.
results_line() {
	mkdir -p "$(dirname "$E2E_RESULTS")"
	printf '%s %s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SCENARIO" \
		"$(basename "$IKETCPD")" "$*" >>"$E2E_RESULTS"
}

# ---- common setups ------------------------------------------------------------------

# setup_tcp_pair [INITIATOR_OPTS...] [-- RESPONDER_OPTS...]: topo_basic, UDP
# blocked on the client link, responder charon + iketcpd server in gw,
# iketcpd client (--enable-tcp yes) + initiator charon in c1. Extra iketcpd
# flags: IKETCPD_SERVER_ARGS / IKETCPD_CLIENT_ARGS (arrays).
# shellcheck disable=SC2120 # arguments are optional
setup_tcp_pair() {
	local iopts=() ropts=() side=i a
	for a in "$@"; do
		if [ "$a" = -- ]; then
			side=r
			continue
		fi
		if [ $side = i ]; then iopts+=("$a"); else ropts+=("$a"); fi
	done
	topo_basic
	block_udp "$NS_C1"
	charon_start "$NS_GW" responder ${ropts[@]+"${ropts[@]}"}
	iketcpd_server "$NS_GW" ${IKETCPD_SERVER_ARGS[@]+"${IKETCPD_SERVER_ARGS[@]}"}
	iketcpd_client "$NS_C1" "$(gw_addr 1)" --enable-tcp yes \
		${IKETCPD_CLIENT_ARGS[@]+"${IKETCPD_CLIENT_ARGS[@]}"}
	charon_start "$NS_C1" initiator remote=127.0.0.1 rport="$CLIENT_UDP_PORT" lport=4500 \
		${iopts[@]+"${iopts[@]}"}
}
