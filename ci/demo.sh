#!/usr/bin/env bash
# ci/demo.sh: the README's "main job". Builds iketcpd and shows the gateway
# carrying a real IPsec tunnel over TCP, on a network that drops all UDP.
#
#   ./ci/demo.sh                 the gateway demo, as root (namespaces); not
#                                root: re-runs itself with sudo if installed
#   ./ci/demo.sh --keep          same, but keep the run directory (configs, logs)
#   ./ci/demo.sh --frames        only "iketcp demo": encode / parse RFC 9329
#                                frames and the send queue (no root needed
#                                once the build packages are installed)
#
# What the gateway demo builds, in two network namespaces (itd<PID>-c1 and
# itd<PID>-gw, so it never collides with tests/e2e runs, which use ike<PID>):
#
#   itd-c1 (client host)                          itd-gw (gateway host)
#   strongSwan initiator (10.1.0.1)               strongSwan responder (10.2.0.1)
#     | UDP 127.0.0.1:4501                          ^ UDP 127.0.0.1:4500
#   iketcpd client --enable-tcp yes               iketcpd server --listen 0.0.0.0:4500
#     | TCP -----------> veth, nftables drops all UDP -----------> |
#
# It then initiates the tunnel, pings through it, shows the nftables UDP
# counters (zero: nothing tried UDP), the TCP connection (ss) and iketcpd's
# own counters (SIGUSR1), stops both iketcpd with SIGTERM (drain, exit 0) and
# removes everything it started (EXIT trap: PIDs it recorded, namespaces by
# name). Exit status 0 only if the tunnel carried every ping over TCP.
#
# Reuses tests/e2e/lib.sh (namespaces, charon configs, nftables counters).
# Packages: ci/deps.sh (Debian 12). Environment: DEMO_NO_INSTALL=1 (never
# run apt-get; fail if a package is missing), JOBS (build jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=$ROOT/build/demo
JOBS=${JOBS:-$(nproc)}

MODE=gateway
KEEP=0
for arg in "$@"; do
	case "$arg" in
	--frames) MODE=frames ;;
	--keep) KEEP=1 ;;
	-h | --help)
		sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "ci/demo.sh: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

banner() {
	printf '\n=== %s\n' "$*"
}

# ---- root ------------------------------------------------------------------------
# The gateway demo needs root (network namespaces). Not root: re-run under
# sudo when it is installed, else say what to do.
if [ "$MODE" = gateway ] && [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		echo "ci/demo.sh: the gateway demo needs root (network namespaces): re-running with sudo"
		exec sudo env JOBS="$JOBS" DEMO_NO_INSTALL="${DEMO_NO_INSTALL:-0}" "$ROOT/ci/demo.sh" "$@"
	fi
	echo "ci/demo.sh: the gateway demo needs root (network namespaces) and sudo is not installed:" \
		"run it as root, or run ci/demo.sh --frames for the frame demo alone" >&2
	exit 1
fi

# ---- packages ------------------------------------------------------------------
# Named in ci/deps.sh, which also checks afterwards that each capability is
# really there (compiler, OpenSSL 3, charon with every plugin the configs load,
# nft, ...), so a missing piece stops the demo here with the package to
# install, not deep inside it.
DEPS_WHO=ci/demo.sh
# shellcheck source=ci/deps.sh
. "$ROOT/ci/deps.sh"
PACKAGES=("${DEPS_BUILD[@]}")
[ "$MODE" = frames ] || PACKAGES+=("${DEPS_GATEWAY[@]}")
if [ "${DEMO_NO_INSTALL:-0}" = 1 ]; then
	mapfile -t need < <(deps_missing "${PACKAGES[@]}")
	if ((${#need[@]})); then
		echo "ci/demo.sh: missing packages (DEMO_NO_INSTALL=1): apt-get install ${need[*]}" >&2
		exit 1
	fi
else
	banner "packages (Debian 12): ${PACKAGES[*]}"
	deps_install "${PACKAGES[@]}" || exit 1
fi
ok=1
deps_check_build || ok=0
if [ "$MODE" = gateway ]; then
	deps_check_gateway || ok=0
fi
[ "$ok" = 1 ] || {
	echo "ci/demo.sh: stopping: the capabilities above are missing" >&2
	exit 1
}
echo "checked: gcc, make, cmake, pkg-config, OpenSSL 3$([ "$MODE" = frames ] ||
	echo ", charon + plugins ($DEPS_CHARON_PLUGINS), swanctl, nft, ip, ss, ping, sysctl, python3, /dev/net/tun")"

# ---- build -----------------------------------------------------------------------
banner "building iketcp and iketcpd (Release) in build/demo"
t_build=$SECONDS
mkdir -p "$ROOT/build"
# One build at a time in build/demo (two demos may be started together).
exec 7>"$ROOT/build/demo.lock"
flock 7
# No -Werror here: the demo is for operators, ci/test.sh is the warning gate.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DIKETCP_TESTS=OFF -DIKETCP_BENCH=OFF \
	-DIKETCP_WERROR=OFF >"$ROOT/build/demo-cmake.log" 2>&1 ||
	{
		cat "$ROOT/build/demo-cmake.log" >&2
		exit 1
	}
cmake --build "$BUILD" -j"$JOBS" >"$ROOT/build/demo-build.log" 2>&1 ||
	{
		tail -n 40 "$ROOT/build/demo-build.log" >&2
		exit 1
	}
flock -u 7
exec 7>&-
echo "built in $((SECONDS - t_build)) s: $("$BUILD/iketcpd" -V), $("$BUILD/iketcp" version)"

if [ "$MODE" = frames ]; then
	banner "iketcp demo: RFC 9329 frames, parsed back in odd-sized chunks; the send queue"
	exec "$BUILD/iketcp" demo
fi

# ---- the gateway demo (in a subshell: its EXIT trap cleans up, then the ----------
# ---- parent checks that nothing was left behind) -----------------------------
DEMO_PREFIX=itd$$
gateway_demo() {
	export IKETCPD=$BUILD/iketcpd E2E_PREFIX=$DEMO_PREFIX E2E_KEEP=$KEEP
	# shellcheck source=SCRIPTDIR/../tests/e2e/lib.sh
	. "$ROOT/tests/e2e/lib.sh"
	# shellcheck disable=SC2034 # read by lib.sh: log prefix, run directory name
	SCENARIO=demo

	e2e_init
	need_iketcpd
	# A signal that arrives while a function runs with its output redirected
	# (e.g. swan ... >>initiate.out) would run the EXIT trap with that
	# redirection in force: put the cleanup's messages back on the terminal.
	exec 8>&1 9>&2
	trap 'exec 1>&8 2>&9; exit 130' INT
	trap 'exec 1>&8 2>&9; exit 143' TERM
	trap 'exec 1>&8 2>&9; exit 129' HUP

	banner "1. two hosts joined by a veth; nftables on the client drops every UDP packet"
	topo_basic
	block_udp "$NS_C1"

	banner "2. gateway host: strongSwan responder (UDP 4500) + iketcpd server (TCP 4500)"
	echo "    charon binds UDP 500 and 4500 on all addresses; iketcpd binds TCP 4500: no clash."
	charon_start "$NS_GW" responder
	iketcpd_server "$NS_GW"
	local srv_pid cli_pid
	srv_pid=$(cat "$(dir_of "$NS_GW")/iketcpd-server.pid")

	banner "3. client host: iketcpd client (--enable-tcp yes) + strongSwan initiator -> 127.0.0.1:$CLIENT_UDP_PORT"
	iketcpd_client "$NS_C1" "$(gw_addr 1)" --enable-tcp yes
	cli_pid=$(cat "$(dir_of "$NS_C1")/iketcpd-client.pid")
	charon_start "$NS_C1" initiator remote=127.0.0.1 rport="$CLIENT_UDP_PORT" lport=4500

	banner "4. swanctl --initiate: IKE_SA_INIT, IKE_AUTH and the CHILD_SA, all over TCP"
	local t0 t_up
	t0=$(now_ms)
	initiate "$NS_C1" 30
	t_up=$(($(now_ms) - t0))
	must_wait "sa_established $NS_GW" 10 "responder: SA established"
	echo "--- responder (gateway host): swanctl --list-sas. Its peer is 127.0.0.1: the"
	echo "    iketcpd server's UDP socket for this IKE session (it keeps that socket"
	echo "    across TCP reconnects, so the responder never sees the peer move)."
	swan "$NS_GW" --list-sas | sed 's/^/    /'

	banner "5. ping 10.1.0.1 -> 10.2.0.1 through the tunnel"
	local out recv rtt
	out=$(nsx "$NS_C1" ping -n -c 5 -i 0.2 -W 2 -I "$(inner_addr 1)" "$GW_INNER" 2>&1) || true
	# shellcheck disable=SC2001 # indent every line
	sed 's/^/    /' <<<"$out"
	recv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
	rtt=$(sed -n 's/^rtt .* = \([^ ]*\) ms.*/\1/p' <<<"$out" | cut -d/ -f2)
	[ "${recv:-0}" -eq 5 ] || fail "only ${recv:-0} of 5 pings answered"

	banner "6. nftables counters on the client's link (counted before the drop rule)"
	local c udp drops tcp
	for c in udp_out udp_in udp_drop_out udp_drop_in tcp4500_out tcp4500_in; do
		printf '    %-13s %6s packets\n' "$c" "$(nft_count "$NS_C1" "$c")"
	done
	udp=$(udp_count "$NS_C1")
	drops=$(udp_drop_count "$NS_C1")
	tcp=$(tcp4500_count "$NS_C1")
	[ "$udp" -eq 0 ] || fail "$udp UDP packets tried to cross the link (expected 0)"
	[ "$tcp" -gt 0 ] || fail "no TCP packet to or from port $GW_TCP_PORT"
	log "UDP packets on the link: $udp (dropped: $drops); TCP packets to/from port $GW_TCP_PORT: $tcp"

	banner "7. the TCP connection (client host), and the gateway's sockets"
	echo "--- client host: ss -tnp dport :$GW_TCP_PORT"
	nsx "$NS_C1" ss -tnp "( dport = :$GW_TCP_PORT )" | sed 's/^/    /'
	echo "--- gateway host: ss -tuanp (TCP $GW_TCP_PORT from the client, UDP to charon)"
	nsx "$NS_GW" ss -tuanp | grep -E 'State|iketcpd|charon' | sed 's/^/    /'
	local conns
	conns=$(tcp4500_conns "$NS_C1")
	[ "$conns" -eq 1 ] || fail "expected 1 established TCP connection to $GW_TCP_PORT, found $conns"

	banner "8. iketcpd's counters: kill -USR1 (logged at level info)"
	show_counters server "$NS_GW" "$srv_pid" 'from backend: '
	show_counters client "$NS_C1" "$cli_pid" 'from peer: '

	banner "9. kill -TERM both iketcpd: drain queued frames, close, exit 0"
	stop_iketcpd client "$NS_C1" "$cli_pid"
	[ "$STOP_RC" = 0 ] || fail "iketcpd client exited with status $STOP_RC after SIGTERM"
	stop_iketcpd server "$NS_GW" "$srv_pid"
	[ "$STOP_RC" = 0 ] || fail "iketcpd server exited with status $STOP_RC after SIGTERM"

	banner "RESULT: PASS"
	echo "    tunnel up in $t_up ms over one TCP connection; 5/5 pings (avg rtt ${rtt:-?} ms)"
	echo "    UDP packets on the link: $udp; TCP packets to/from port $GW_TCP_PORT: $tcp"
	echo "    both iketcpd exited 0 on SIGTERM; $(elapsed) s from the first namespace to the end"
}

# show_counters server|client NS PID PATTERN: SIGUSR1, then print the lines
# iketcpd logged for it (waits for the last line, PATTERN).
show_counters() {
	local what=$1 ns=$2 pid=$3 pat=$4 f n
	f=$(dir_of "$ns")/iketcpd-$what.log
	n=$(wc -l <"$f")
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = iketcpd ] || fail "PID $pid is not iketcpd"
	kill -USR1 "$pid"
	wait_until "tail -n +$((n + 1)) '$f' | grep -q '$pat'" 5 ||
		fail "iketcpd $what logged no counters after SIGUSR1"
	echo "--- iketcpd $what (PID $pid) after kill -USR1:"
	tail -n +$((n + 1)) "$f" | grep -E ' info: [^ ]+: ' | sed 's/^/    /'
}

# stop_iketcpd server|client NS PID: SIGTERM, wait (bounded) for the exit,
# show the last log lines; the exit status goes to STOP_RC. (Not to be run
# in $(...): only this shell can wait for its child.)
stop_iketcpd() {
	local what=$1 ns=$2 pid=$3 f n t0 rc=0 p keep=()
	f=$(dir_of "$ns")/iketcpd-$what.log
	n=$(wc -l <"$f")
	t0=$(now_ms)
	kill -TERM "$pid"
	wait_until "! kill -0 $pid || [ \"\$(awk '{print \$3}' /proc/$pid/stat 2>/dev/null)\" = Z ]" 5 ||
		fail "iketcpd $what still running 5 s after SIGTERM"
	wait "$pid" || rc=$?
	# Reaped: take it off lib.sh's list so the EXIT trap never signals a reused PID.
	for p in "${_PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	_PIDS=(${keep[@]+"${keep[@]}"})
	echo "--- iketcpd $what: exit status $rc, $(($(now_ms) - t0)) ms after SIGTERM; its last lines:"
	tail -n +$((n + 1)) "$f" | grep -E ' (info|warning|error): ' | sed 's/^/    /'
	STOP_RC=$rc
}

set +e
(gateway_demo)
rc=$?
set -e

# The subshell's EXIT trap (tests/e2e/lib.sh) killed what it started and
# deleted its namespaces; check that nothing is left.
left=$(ip netns list | awk -v p="$DEMO_PREFIX-" 'index($1, p) == 1 {print $1}')
if [ -n "$left" ]; then
	echo "ci/demo.sh: namespaces left behind: $left" >&2
	[ "$rc" -ne 0 ] || rc=1
else
	echo "cleanup: daemons stopped, namespaces $DEMO_PREFIX-c1 and $DEMO_PREFIX-gw deleted"
fi
[ "$rc" -eq 0 ] || echo "ci/demo.sh: FAILED (exit status $rc); see the state and logs above" >&2
exit "$rc"
