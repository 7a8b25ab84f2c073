#!/bin/bash
# tests/e2e/run-all.sh [PATTERN...]: run the end-to-end scenarios.
#
# Runs every tests/e2e/NN-name/run.sh (or only those whose name contains one
# of the PATTERNs, e.g. "run-all.sh 00 rekey") one after the other, each
# under its own time limit, prints PASS / FAIL / SKIP per scenario and a
# summary, and exits non-zero if any scenario failed. A scenario that exits
# with 77 is a SKIP (for example: iketcpd is not built yet).
#
# Environment:
#   E2E_SCENARIO_TIMEOUT  seconds per scenario (default 300)
#   E2E_OUT               where each scenario's output is saved
#                         (default build/e2e; <name>.log per scenario)
#   E2E_NO_INSTALL=1      do not apt-get install missing tools
#   IKETCPD, E2E_KEEP, E2E_VERBOSE, ...  passed on (see lib.sh)
#
# After each scenario, whatever it recorded in its registry (PIDs with their
# start times, namespace names) and left behind is killed / deleted, so a
# scenario killed by the time limit cannot leak daemons or namespaces.
set -u

E2E_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
TIMEOUT=${E2E_SCENARIO_TIMEOUT:-300}
OUT=${E2E_OUT:-$ROOT/build/e2e}

say() {
	printf '[run-all %s] %s\n' "$(date +%H:%M:%S)" "$*"
}

if [ "$(id -u)" -ne 0 ]; then
	say "SKIP: the end-to-end tests need root (network namespaces); try sudo"
	exit 0
fi

# ---- tools: install what is missing (Debian package names) ------------------
declare -A PKG=(
	[ip]=iproute2 [ss]=iproute2 [nft]=nftables [ping]=iputils-ping
	[swanctl]=strongswan-swanctl [/usr/lib/ipsec/charon]=strongswan-charon
	[/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so]=libcharon-extra-plugins
	[/usr/lib/ipsec/plugins/libstrongswan-openssl.so]=libstrongswan-standard-plugins
	[/usr/lib/ipsec/plugins/libstrongswan-gcm.so]=libstrongswan-standard-plugins
	[sysctl]=procps [python3]=python3 [iperf3]=iperf3 [timeout]=coreutils
	[openssl]=openssl [tcpdump]=tcpdump [tshark]=tshark [tinyproxy]=tinyproxy-bin
	[haproxy]=haproxy
)
have() {
	case "$1" in
	/*) [ -e "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac
}
missing=()
for t in "${!PKG[@]}"; do
	have "$t" || missing+=("${PKG[$t]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	if [ "${E2E_NO_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null; then
		say "installing missing packages: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
				apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
			say "apt-get install failed"
	fi
	still=()
	for t in "${!PKG[@]}"; do
		have "$t" || still+=("$t (${PKG[$t]})")
	done
	if [ "${#still[@]}" -gt 0 ]; then
		say "FAIL: missing tools: ${still[*]}"
		exit 1
	fi
fi

# ---- the scenarios ------------------------------------------------------------
scenarios=()
for d in "$E2E_DIR"/[0-9][0-9]-*/; do
	d=${d%/}
	[ -f "$d/run.sh" ] || continue
	name=$(basename "$d")
	if [ "$#" -gt 0 ]; then
		match=0
		for p in "$@"; do
			[[ "$name" == *"$p"* ]] && match=1
		done
		[ "$match" = 1 ] || continue
	fi
	scenarios+=("$name")
done
if [ "${#scenarios[@]}" -eq 0 ]; then
	say "no scenario matches: $*"
	exit 1
fi

mkdir -p "$OUT"
iketcpd=${IKETCPD:-${IKETCP_BUILD_DIR:-build}/iketcpd}
case "$iketcpd" in /*) ;; *) iketcpd=$ROOT/$iketcpd ;; esac
if [ -x "$iketcpd" ]; then
	say "iketcpd: $iketcpd"
else
	say "iketcpd: not found at $iketcpd (scenarios that need it will SKIP)"
fi
say "${#scenarios[@]} scenario(s), ${TIMEOUT}s limit each, logs in $OUT"

# reap REGISTRY: kill what a scenario recorded and left running.
reap() {
	local reg=$1 kind a b st pid
	[ -s "$reg" ] || return 0
	while read -r kind a b; do
		case "$kind" in
		pid)
			[ -d "/proc/$a" ] || continue
			st=$(sed 's/.*) //' "/proc/$a/stat" 2>/dev/null | awk '{print $20}')
			if [ "$st" = "$b" ]; then
				say "reaping leftover PID $a"
				kill -KILL "$a" 2>/dev/null
			fi
			;;
		netns)
			[ -e "/run/netns/$a" ] || continue
			for pid in $(ip netns pids "$a" 2>/dev/null); do
				kill -KILL "$pid" 2>/dev/null
			done
			say "deleting leftover namespace $a"
			ip netns del "$a" 2>/dev/null
			;;
		esac
	done <"$reg"
}

declare -A RESULT=() SECS=()
failed=0
interrupted=0
trap 'interrupted=1' INT
for name in "${scenarios[@]}"; do
	if [ "$interrupted" = 1 ]; then
		RESULT[$name]="not run (interrupted)"
		SECS[$name]=0
		continue
	fi
	log=$OUT/$name.log
	reg=$(mktemp /tmp/iketcp-e2e-registry.XXXXXX)
	echo
	say "===== $name ====="
	t0=$SECONDS
	E2E_REGISTRY=$reg timeout -k 20 "$TIMEOUT" bash "$E2E_DIR/$name/run.sh" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	reap "$reg"
	rm -f "$reg"
	SECS[$name]=$((SECONDS - t0))
	case "$rc" in
	0) RESULT[$name]=PASS ;;
	77) RESULT[$name]=SKIP ;;
	124 | 137) RESULT[$name]="FAIL (time limit ${TIMEOUT}s)" ;;
	*) RESULT[$name]="FAIL (exit $rc)" ;;
	esac
	[ "$interrupted" = 1 ] && [ "$rc" -ne 0 ] && RESULT[$name]="FAIL (interrupted)"
	[[ "${RESULT[$name]}" == FAIL* ]] && failed=$((failed + 1))
	say "===== $name: ${RESULT[$name]} in ${SECS[$name]}s"
done

echo
echo "================ end-to-end summary ================"
npass=0
nskip=0
for name in "${scenarios[@]}"; do
	r=${RESULT[$name]}
	printf '  %-22s %-28s %4ss\n' "$name" "$r" "${SECS[$name]}"
	[ "$r" = PASS ] && npass=$((npass + 1))
	[ "$r" = SKIP ] && nskip=$((nskip + 1))
done
echo "  total: ${#scenarios[@]}, passed: $npass, failed: $failed, skipped: $nskip"
echo "===================================================="
[ "$failed" -eq 0 ] && [ "$interrupted" = 0 ]
