#!/bin/bash
# ci/service-check.sh: install the Debian packages on a Debian 12 that boots
# real systemd, and run iketcpd there the way an administrator would.
#
#   ci/service-check.sh [DEBDIR]   DEBDIR holds iketcpd_*.deb and
#                                  libiketcp0_*.deb (default build/ci-package,
#                                  where ci/package.sh leaves them)
#   options: --keep (keep the container's root afterwards)
#
# How: debootstrap builds a minimal Debian 12 root with systemd, dbus and
# curl once (FRESH_DIR/sdbase, ~1 min; rebuilt after FRESH_MAX_AGE_DAYS).
# Each run copies it, boots the copy with `systemd-nspawn -b` (systemd is
# PID 1 there: units, sd_notify, journald, RuntimeDirectory, the unit's
# sandboxing) and runs, inside, with nsenter:
#
#   apt-get install ./iketcpd_*.deb ./libiketcp0_*.deb
#   (edit /etc/iketcpd/iketcpd.conf: metrics-listen, stats-socket-group)
#   systemctl enable --now iketcpd      then: systemctl status shows READY's
#                                       STATUS= line, active (running)
#   systemctl reload iketcpd            RELOADING/READY, the same main PID
#   runuser -u monitor -- iketcp status (monitor is in group iketcpd)
#   runuser -u nobody  -- iketcp status (must be refused)
#   curl http://127.0.0.1:9575/metrics  (Prometheus text)
#   systemd-analyze security iketcpd    (the exposure score)
#   systemctl stop iketcpd              (STOPPING, exit 0)
#
# Every command and its output go to FRESH_DIR/logs/<time>-service.log (the
# transcript the closing notes quote). The container shares this host's
# network namespace (apt needs the mirror); iketcpd's sample config listens
# on TCP 443 and 127.0.0.1:9575 there, so nothing else may use them.
# Exit 0 only if every check passed ("service-check RESULT: PASS").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DEBDIR=$ROOT/build/ci-package
KEEP=0
for arg in "$@"; do
	case "$arg" in
	--keep) KEEP=1 ;;
	-h | --help)
		sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "ci/service-check.sh: unknown option '$arg'" >&2
		exit 2
		;;
	*) DEBDIR=$(cd "$arg" && pwd) ;;
	esac
done

say() {
	printf '[service-check %s] %s\n' "$(date +%H:%M:%S)" "$*"
}
die() {
	echo "ci/service-check.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, systemd-nspawn, nsenter)"
if [ "$DEBDIR" = "$ROOT/build/ci-package" ] && ! ls "$DEBDIR"/iketcpd_*.deb >/dev/null 2>&1; then
	say "no packages in $DEBDIR yet: ./ci/package.sh --no-install"
	./ci/package.sh --no-install >"$ROOT/build/service-check-package.log" 2>&1 || {
		tail -n 30 "$ROOT/build/service-check-package.log" >&2
		die "ci/package.sh failed"
	}
fi
shopt -s nullglob
DEBS=("$DEBDIR"/iketcpd_*.deb "$DEBDIR"/libiketcp0_*.deb)
shopt -u nullglob
[ "${#DEBS[@]}" -eq 2 ] || die "want one iketcpd_*.deb and one libiketcp0_*.deb in $DEBDIR (./ci/package.sh makes them)"

export DEBIAN_FRONTEND=noninteractive
for c in debootstrap:debootstrap systemd-nspawn:systemd-container nsenter:util-linux; do
	command -v "${c%%:*}" >/dev/null && continue
	say "installing ${c#*:}"
	apt-get install -y -q --no-install-recommends "${c#*:}" >/dev/null ||
		die "could not install ${c#*:} (apt-get install ${c#*:})"
done

FRESH_DIR=${FRESH_DIR:-/var/tmp/iketcp-fresh}
BASE=$FRESH_DIR/sdbase
RUNROOT=$FRESH_DIR/sdrun.$$
LOGS=$FRESH_DIR/logs
STAMP=$(date +%Y%m%d-%H%M%S)
LOG=$LOGS/$STAMP-service.log
MACHINE=iketcp-svc-$$
mkdir -p "$FRESH_DIR" "$LOGS"
: >"$LOG"

NSPAWN=""
LEADER=""
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		# nspawn turns SIGTERM into an orderly halt of the container;
		# a second one, or SIGKILL after 20 s, ends it at once.
		kill -TERM "$NSPAWN" 2>/dev/null
		for i in $(seq 1 40); do
			kill -0 "$NSPAWN" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$NSPAWN" 2>/dev/null
		wait "$NSPAWN" 2>/dev/null
	fi
	if [ -d "$RUNROOT" ]; then
		if awk -v r="$RUNROOT" 'index($5, r) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
			echo "ci/service-check.sh: mounts left under $RUNROOT, not deleting it" >&2
			[ "$rc" -ne 0 ] || rc=1
		elif [ "$KEEP" = 1 ]; then
			say "kept the container's root: $RUNROOT"
		else
			rm -rf --one-file-system "$RUNROOT"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- the base: minbase plus what a booted Debian host has -------------------
if [ -e "$BASE/.iketcp-sdbase" ] &&
	[ -n "$(find "$BASE/.iketcp-sdbase" -mtime +"${FRESH_MAX_AGE_DAYS:-7}")" ]; then
	rm -rf --one-file-system "$BASE"
fi
if [ ! -e "$BASE/.iketcp-sdbase" ]; then
	MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
	say "debootstrap bookworm (systemd, dbus, curl) from $MIRROR into $BASE"
	rm -rf --one-file-system "$BASE" "$BASE.tmp"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,ca-certificates \
		bookworm "$BASE.tmp" "$MIRROR" >"$LOGS/$STAMP-sdbase.log" 2>&1 || {
		tail -n 20 "$LOGS/$STAMP-sdbase.log" >&2
		die "debootstrap failed (log: $LOGS/$STAMP-sdbase.log)"
	}
	rm -rf "$BASE.tmp/var/cache/apt/archives/"*.deb
	# A booted host has a machine id; nspawn would otherwise make a
	# transient one and warn.
	chroot "$BASE.tmp" systemd-machine-id-setup >/dev/null 2>&1 || true
	date -u +%Y-%m-%dT%H:%M:%SZ >"$BASE.tmp/.iketcp-sdbase"
	mv "$BASE.tmp" "$BASE"
else
	say "reusing $BASE (built $(cat "$BASE/.iketcp-sdbase"))"
fi

cp -a "$BASE" "$RUNROOT"
mkdir -p "$RUNROOT/root/debs"
cp "${DEBS[@]}" "$RUNROOT/root/debs/"
cp -L /etc/resolv.conf "$RUNROOT/etc/resolv.conf"

# ---- boot ---------------------------------------------------------------------
say "booting $RUNROOT with systemd-nspawn -b (machine $MACHINE)"
# --register=no/--keep-unit: this host may have no systemd (a container)
setsid systemd-nspawn -q -D "$RUNROOT" --machine="$MACHINE" --register=no --keep-unit \
	--resolv-conf=off -b --console=pipe </dev/null >"$LOGS/$STAMP-boot.log" 2>&1 &
NSPAWN=$!
for _ in $(seq 1 60); do
	LEADER=$(pgrep -P "$NSPAWN" -x systemd || true)
	[ -n "$LEADER" ] && break
	sleep 0.5
done
[ -n "$LEADER" ] || {
	cat "$LOGS/$STAMP-boot.log" >&2
	die "the container's systemd did not start"
}

# in_ct COMMAND: a shell line inside the container, as root, in every one of
# its namespaces, with a clean environment.
in_ct() {
	nsenter -t "$LEADER" -a /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/bash -c "$1"
}

state=""
for _ in $(seq 1 120); do
	state=$(in_ct 'systemctl is-system-running' 2>/dev/null || true)
	case "$state" in
	running | degraded) break ;;
	esac
	sleep 0.5
done
case "$state" in
running | degraded) say "the container's systemd is $state ($(in_ct 'systemctl --version | head -1'))" ;;
*) die "the container did not finish booting (state '$state'; log: $LOGS/$STAMP-boot.log)" ;;
esac

FAILS=0
# step TITLE COMMAND [EXPECT-REGEX]: run COMMAND in the container, log it as
# "# COMMAND" plus its output, and check exit 0 and the regex.
step() {
	local title=$1 cmd=$2 want=${3:-} out rc=0
	out=$(in_ct "$cmd" 2>&1) || rc=$?
	{
		echo "# $cmd"
		echo "$out"
		echo
	} >>"$LOG"
	if [ "$rc" -ne 0 ]; then
		say "FAIL: $title (exit $rc)"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
		FAILS=$((FAILS + 1))
	elif [ -n "$want" ] && ! grep -Eq -- "$want" <<<"$out"; then
		say "FAIL: $title (no /$want/ in the output)"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
		FAILS=$((FAILS + 1))
	else
		say "ok: $title"
	fi
}
# refused TITLE COMMAND REGEX: COMMAND must fail, saying REGEX.
refused() {
	local title=$1 cmd=$2 want=$3 out rc=0
	out=$(in_ct "$cmd" 2>&1) || rc=$?
	{
		echo "# $cmd"
		echo "$out"
		echo "(exit $rc)"
		echo
	} >>"$LOG"
	if [ "$rc" -eq 0 ]; then
		say "FAIL: $title (it succeeded)"
		FAILS=$((FAILS + 1))
	elif ! grep -Eq -- "$want" <<<"$out"; then
		say "FAIL: $title (failed, but without /$want/: $(printf '%s' "$out" | tail -n 1))"
		FAILS=$((FAILS + 1))
	else
		say "ok: $title (exit $rc: $(printf '%s' "$out" | tail -n 1))"
	fi
}

debs=$(cd "$RUNROOT/root/debs" && printf './%s ' *.deb)
step "apt-get install the packages" \
	"cd /root/debs && apt-get update -q >/dev/null && apt-get install -y -q $debs 2>&1 | tail -n 12"
step "the unit is installed, not enabled" "systemctl is-enabled iketcpd || true" '^disabled$'
step "the iketcpd account exists" "getent passwd iketcpd && getent group iketcpd" '^iketcpd:'
step "the sample config is a conffile" "dpkg-query -W -f='\${Conffiles}\n' iketcpd" '/etc/iketcpd/iketcpd.conf'
# The administrator's edit: the backend (the sample's is the local charon on
# 127.0.0.1:4500, right for this host), a scrape address and the group that
# may read the stats socket.
step "edit the sample config" "sed -i -e 's|^#\\?metrics-listen *=.*|metrics-listen = 127.0.0.1:9575|' \
	-e 's|^#\\?stats-socket-group *=.*|stats-socket-group = iketcpd|' /etc/iketcpd/iketcpd.conf &&
	grep -E '^(metrics-listen|stats-socket-group|backend) ' /etc/iketcpd/iketcpd.conf &&
	iketcpd -n -c /etc/iketcpd/iketcpd.conf" 'metrics-listen = 127.0.0.1:9575'
step "a monitoring user in group iketcpd" "useradd -m -G iketcpd monitor && id monitor" 'iketcpd'
step "systemctl enable --now iketcpd" "systemctl enable --now iketcpd 2>&1"
step "systemctl status: active, STATUS= from READY" \
	"systemctl status iketcpd --no-pager -l 2>&1 | head -n 20" 'Active: active \(running\)'
step "the STATUS line" "systemctl show -p StatusText -p MainPID -p NRestarts iketcpd" 'StatusText=.+'
pid1=$(in_ct 'systemctl show -p MainPID --value iketcpd' 2>/dev/null || true)
case "$pid1" in '' | 0 | *[!0-9]*) pid1=none ;; esac
step "iketcpd runs as iketcpd, not root" \
	"stat -c '%U %n' /proc/$pid1 && tr '\\0' ' ' </proc/$pid1/cmdline && echo && grep -E '^Cap(Eff|Amb)' /proc/$pid1/status" '^iketcpd /proc'
step "iketcp status as monitor (group iketcpd)" "runuser -u monitor -- iketcp status" '.'
refused "iketcp status as nobody" "runuser -u nobody -- iketcp status" '[Pp]ermission denied'
step "iketcp stats --prometheus as monitor" \
	"runuser -u monitor -- iketcp stats --prometheus | grep -E '^# (HELP|TYPE)|_total' | head -n 12" '_total'
step "scrape http://127.0.0.1:9575/metrics" \
	"curl -sS -i --max-time 5 http://127.0.0.1:9575/metrics | head -n 16" '^HTTP/1\.[01] 200'
step "systemctl reload iketcpd" "systemctl reload iketcpd && sleep 0.2 && systemctl is-active iketcpd" '^active$'
step "the same main PID after reload" "systemctl show -p MainPID --value iketcpd" "^$pid1\$"
step "the journal shows the reload" "journalctl -u iketcpd --no-pager -o cat | tail -n 12" 'configuration reloaded'
step "systemd-analyze security iketcpd" "systemd-analyze security iketcpd --no-pager 2>&1 | tail -n 3" 'Overall exposure level'
step "systemctl stop iketcpd" "systemctl stop iketcpd && systemctl show -p Result -p ExecMainStatus iketcpd" 'ExecMainStatus=0'
step "the journal of the whole run" "journalctl -u iketcpd --no-pager -o short-monotonic | tail -n 30"

echo
echo "================ service check ($(basename "${DEBS[0]}")) ================"
echo "  transcript: $LOG"
if [ "$FAILS" -eq 0 ]; then
	echo "  service-check RESULT: PASS"
else
	echo "  service-check RESULT: FAIL ($FAILS checks failed)"
fi
echo "======================================================================="
[ "$FAILS" -eq 0 ]
