#!/bin/bash
# ci/fresh-check.sh: prove that the README's two commands work on a pristine
# Debian 12 with nothing installed by hand beforehand.
#
#   ci/fresh-check.sh                 ./ci/demo.sh in a fresh Debian 12 root
#   ci/fresh-check.sh --full          ./ci/demo.sh, then ./ci/test.sh, in one
#                                     fresh root (FUZZ_SECONDS defaults to 5)
#   ci/fresh-check.sh --test          ./ci/test.sh alone in a fresh root
#   ci/fresh-check.sh --user          ./ci/demo.sh as a user: without sudo
#                                     (must refuse, saying why), then with
#   options: --keep (keep the run's root afterwards), --rebuild-base
#
# How: debootstrap --variant=minbase builds a Debian 12 (bookworm) root once
# (FRESH_DIR/base, ~1 min, ~210 MB; reused until --rebuild-base). Every check
# copies it to FRESH_DIR/run.PID, so the base is never changed and each run
# starts from the same pristine state: no sudo, no git, no compiler, nothing
# but Debian's required packages and the apt sources a fresh install has
# (bookworm, bookworm-updates, bookworm-security). The repository goes in as
# a `git clone` of the current HEAD (uncommitted changes are NOT checked) at
# /root/iketcp, and the command runs there as root through chroot, with a
# clean environment, in its own mount and PID namespaces (unshare): /proc,
# /sys, /dev (for /dev/net/tun), a private /run (for `ip netns`) and a fresh
# /dev/shm are mounted only in that mount namespace, so they disappear with
# it, and every process the check started dies with its PID namespace, also
# when the check fails or is interrupted. The run copy is then deleted.
#
# The one difference from a real machine: /usr/sbin/policy-rc.d forbids
# package scripts to start services. The root shares this host's network
# namespace, and strongswan-starter (pulled in by strongswan-charon) and
# haproxy would otherwise start their daemons on the host's ports.
#
# Exit status 0 only if every command printed RESULT: PASS and exited 0.
# Logs: FRESH_DIR/logs/<time>-{demo,test}.log. Needs root, debootstrap (it
# is installed with apt if missing), unshare (util-linux) and git.
#
# Environment:
#   FRESH_DIR      where the base, the run copies and logs live
#                  (default /var/tmp/iketcp-fresh; several GB with --full)
#   FRESH_MIRROR   Debian mirror (default: the first deb.debian.org-style URI
#                  for bookworm in this host's apt sources, else
#                  http://deb.debian.org/debian)
#   FRESH_SECURITY security mirror (default: from the host's sources, else
#                  http://deb.debian.org/debian-security)
#   FRESH_MAX_AGE_DAYS  rebuild the base when it is older (default 7)
#   FUZZ_SECONDS   passed to ci/test.sh (default here: 5)
#   E2E_TIMEOUT, JOBS, CI_SKIP   passed to ci/test.sh when set
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MODE=demo
KEEP=0
REBUILD=0
for arg in "$@"; do
	case "$arg" in
	--full) MODE=full ;;
	--test) MODE="test" ;;
	--demo) MODE=demo ;;
	--user) MODE=user ;;
	--keep) KEEP=1 ;;
	--rebuild-base) REBUILD=1 ;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "ci/fresh-check.sh: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

say() {
	printf '[fresh-check %s] %s\n' "$(date +%H:%M:%S)" "$*"
}
die() {
	echo "ci/fresh-check.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts): run it as root or with sudo"
command -v unshare >/dev/null || die "unshare missing: apt-get install util-linux"
command -v git >/dev/null || die "git missing: apt-get install git"
git rev-parse --verify -q HEAD >/dev/null || die "$ROOT is not a git checkout with a commit"

FRESH_DIR=${FRESH_DIR:-/var/tmp/iketcp-fresh}
case "$FRESH_DIR" in
/*) ;;
*) die "FRESH_DIR must be an absolute path" ;;
esac
case "$FRESH_DIR/" in
"$ROOT"/*) die "FRESH_DIR must be outside the repository" ;;
esac
FUZZ_SECONDS=${FUZZ_SECONDS:-5}

# The base root, its mirrors and the chroot runner: shared with ci/package.sh.
# shellcheck source=ci/fresh-lib.sh
. "$ROOT/ci/fresh-lib.sh"

BASE=$FRESH_BASE
RUNROOT=$FRESH_DIR/run.$$
LOGS=$FRESH_DIR/logs
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$FRESH_DIR" "$LOGS"

# ---- cleanup: the namespace took the mounts and processes with it; check -------
# ---- that, then delete the run copy ---------------------------------------------
CHILD=""
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
	local rc=$? m
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		# unshare --kill-child: killing it kills the PID namespace's init,
		# and with it everything started inside.
		kill -TERM "$CHILD" 2>/dev/null
		wait "$CHILD" 2>/dev/null
	fi
	if [ -d "$RUNROOT" ]; then
		m=$(awk -v r="$RUNROOT" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo)
		if [ -n "$m" ]; then
			# Never reached when unshare works; never rm -rf across a mount.
			echo "ci/fresh-check.sh: mounts left under $RUNROOT, not deleting it:" >&2
			echo "$m" >&2
			[ "$rc" -ne 0 ] || rc=1
		elif [ "$KEEP" = 1 ]; then
			say "kept the run's root: $RUNROOT (chroot $RUNROOT; the repository is /root/iketcp)"
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

declare -A SECS=() RESULT=()
PHASES=()
phase_done() {
	PHASES+=("$1")
	SECS[$1]=$2
	RESULT[$1]=$3
}

# ---- 1. the pristine base (ci/fresh-lib.sh) ------------------------------------
t=$SECONDS
fresh_base_ensure "$REBUILD" "$LOGS/$STAMP-debootstrap.log" || die "no pristine base root"
[ "$FRESH_BASE_BUILT" = 0 ] || phase_done "debootstrap (base)" $((SECONDS - t)) "done"

# ---- 2. a copy of it, and the repository as a clean clone of HEAD ------------
t=$SECONDS
cp -a "$BASE" "$RUNROOT"
rm -f "$RUNROOT/.iketcp-fresh-base"
cp -L /etc/resolv.conf "$RUNROOT/etc/resolv.conf"
printf '#!/bin/sh\n# ci/fresh-check.sh: no services in this chroot\nexit 101\n' >"$RUNROOT/usr/sbin/policy-rc.d"
chmod 755 "$RUNROOT/usr/sbin/policy-rc.d"
HEAD=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
	say "note: uncommitted changes in $ROOT are not part of this check (it uses HEAD)"
git clone -q --no-checkout "$ROOT" "$RUNROOT/root/iketcp"
git -C "$RUNROOT/root/iketcp" checkout -q --detach "$HEAD"
phase_done "copy base + git clone" $((SECONDS - t)) "done"
say "fresh root $RUNROOT, repository at /root/iketcp = $(git log -1 --format='%h %s' "$HEAD")"
for c in sudo git gcc cmake clang charon swanctl; do
	if chroot "$RUNROOT" /bin/sh -c "command -v $c" >/dev/null 2>&1; then
		die "the base is not pristine: '$c' is installed (--rebuild-base)"
	fi
done
say "checked: no sudo, git, gcc, cmake, clang, strongSwan in the fresh root"

# in_root LOGNAME COMMAND: run COMMAND (a shell line) in /root/iketcp inside the
# fresh root, as root, with a clean environment; tee its output to the log.
in_root() {
	local name=$1 cmd=$2 log=$LOGS/$STAMP-$1.log rc=0
	local envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		LANG=C.UTF-8 TERM="${TERM:-dumb}" FUZZ_SECONDS="$FUZZ_SECONDS")
	local v
	for v in E2E_TIMEOUT JOBS CI_SKIP; do
		[ -z "${!v:-}" ] || envs+=("$v=${!v}")
	done
	say "running in the fresh root: $cmd (log: $log)"
	: >"$log"
	fresh_chroot_exec "$RUNROOT" "${envs[@]}" -- /bin/bash -c "cd /root/iketcp && $cmd" \
		>>"$log" 2>&1 &
	CHILD=$!
	tail -n +1 -f --pid="$CHILD" "$log" || true
	wait "$CHILD" || rc=$?
	CHILD=""
	LAST_RC=$rc
	LAST_LOG=$log
}

overall=0
# run_cmd NAME COMMAND: one of the README's commands; PASS needs exit 0 and
# the command's own "RESULT: PASS" line.
run_cmd() {
	local name=$1 cmd=$2 t=$SECONDS res
	in_root "$name" "$cmd"
	if [ "$LAST_RC" -eq 0 ] && grep -q 'RESULT: PASS' "$LAST_LOG"; then
		res=PASS
	else
		res="FAIL (exit $LAST_RC)"
		overall=1
	fi
	phase_done "$cmd" $((SECONDS - t)) "$res"
}

# The not-root paths: a user without sudo must get the one-line "run it as
# root" and exit non-zero before anything is installed; after apt-get install
# sudo (and a NOPASSWD rule), the same command must re-run itself with sudo
# and pass.
USER_SETUP='useradd -m -s /bin/bash fresh && cp -a /root/iketcp /home/fresh/ && chown -R fresh: /home/fresh/iketcp'
AS_USER='runuser -u fresh -- env HOME=/home/fresh bash -c "cd ~/iketcp && ./ci/demo.sh"'
run_user() {
	local t=$SECONDS res
	in_root user-nosudo "$USER_SETUP && $AS_USER"
	if [ "$LAST_RC" -ne 0 ] && grep -q 'sudo is not installed' "$LAST_LOG" &&
		! grep -q 'installing' "$LAST_LOG"; then
		res="PASS (refused)"
	else
		res="FAIL (exit $LAST_RC)"
		overall=1
	fi
	phase_done "user, no sudo: ./ci/demo.sh" $((SECONDS - t)) "$res"
	t=$SECONDS
	in_root user-sudo "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends sudo >/dev/null &&
		echo 'fresh ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/fresh && $AS_USER"
	if [ "$LAST_RC" -eq 0 ] && grep -q 'RESULT: PASS' "$LAST_LOG" &&
		grep -q 're-running with sudo' "$LAST_LOG"; then
		res=PASS
	else
		res="FAIL (exit $LAST_RC)"
		overall=1
	fi
	phase_done "user + sudo: ./ci/demo.sh" $((SECONDS - t)) "$res"
}

case "$MODE" in
demo) run_cmd demo ./ci/demo.sh ;;
user) run_user ;;
test) run_cmd test ./ci/test.sh ;;
full)
	run_cmd demo ./ci/demo.sh
	run_cmd test ./ci/test.sh
	;;
esac

echo
echo "================ fresh Debian 12 check ($(git rev-parse --short "$HEAD")) ================"
for p in "${PHASES[@]}"; do
	printf '  %-28s %-14s %4dm%02ds\n' "$p" "${RESULT[$p]}" $((SECS[$p] / 60)) $((SECS[$p] % 60))
done
echo "  logs: $LOGS/$STAMP-*.log; FUZZ_SECONDS=$FUZZ_SECONDS"
if [ "$overall" -eq 0 ]; then
	echo "  fresh-check RESULT: PASS"
else
	echo "  fresh-check RESULT: FAIL"
fi
echo "======================================================================="
exit "$overall"
