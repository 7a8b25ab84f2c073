# shellcheck shell=bash
# ci/fresh-lib.sh: the pristine Debian 12 root that ci/fresh-check.sh and
# ci/package.sh run things in. Sourced (definitions only, no side effects).
#
#   fresh_base_ensure REBUILD LOG   make or reuse FRESH_BASE (FRESH_DIR/base)
#   fresh_chroot ROOT VAR=VALUE... -- CMD...
#                                   CMD in ROOT as root, with a clean
#                                   environment, in its own mount and PID
#                                   namespaces
#   fresh_chroot_exec ...           the same, exec'ing unshare: for `... &`,
#                                   so that $! is unshare's PID
#
# Environment (read when sourced): FRESH_DIR (default /var/tmp/iketcp-fresh),
# FRESH_MIRROR, FRESH_SECURITY, FRESH_MAX_AGE_DAYS (ci/fresh-check.sh --help).

FRESH_DIR=${FRESH_DIR:-/var/tmp/iketcp-fresh}
FRESH_BASE=$FRESH_DIR/base

# fresh_mirror_from_host SUITE DEFAULT: the first URI that serves SUITE in this
# host's apt sources (deb822 *.sources or one-line *.list), else DEFAULT.
fresh_mirror_from_host() {
	local suite=$1 def=$2 uri
	uri=$(
		{
			cat /etc/apt/sources.list.d/*.sources 2>/dev/null
			echo
		} | awk -v s="$suite" '
			/^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }'
	)
	if [ -z "$uri" ]; then
		uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk -v s="$suite" '$1 == "deb" && $0 !~ /\[/ && $3 == s { print $2; exit }')
	fi
	echo "${uri:-$def}"
}
FRESH_MIRROR=${FRESH_MIRROR:-$(fresh_mirror_from_host bookworm http://deb.debian.org/debian)}
FRESH_SECURITY=${FRESH_SECURITY:-$(fresh_mirror_from_host bookworm-security http://deb.debian.org/debian-security)}

_fresh_say() {
	printf '[fresh-base %s] %s\n' "$(date +%H:%M:%S)" "$*"
}

# fresh_base_ensure REBUILD LOG: FRESH_BASE holds a debootstrap --variant=minbase
# bookworm root, built now when REBUILD is 1, when there is none, or when it
# is older than FRESH_MAX_AGE_DAYS (a fresh machine installs today's
# packages, and apt-get upgrade is not what a new user runs first).
# debootstrap's output goes to LOG. Sets FRESH_BASE_BUILT to 1 when it built
# the base, 0 when it reused it. Needs root. Holds a lock meanwhile, so two
# scripts never build it at once.
fresh_base_ensure() {
	local rebuild=$1 log=$2 rc=0
	FRESH_BASE_BUILT=0
	mkdir -p "$FRESH_DIR"
	exec {_fresh_lock}>"$FRESH_DIR/.base.lock"
	flock "$_fresh_lock"
	_fresh_base_locked "$rebuild" "$log" || rc=$?
	exec {_fresh_lock}>&-
	return "$rc"
}

_fresh_base_locked() {
	local rebuild=$1 log=$2 base=$FRESH_BASE
	if [ -e "$base/.iketcp-fresh-base" ] &&
		[ -n "$(find "$base/.iketcp-fresh-base" -mtime +"${FRESH_MAX_AGE_DAYS:-7}")" ]; then
		_fresh_say "the base is older than ${FRESH_MAX_AGE_DAYS:-7} days: rebuilding it"
		rebuild=1
	fi
	if [ "$rebuild" != 1 ] && [ -e "$base/.iketcp-fresh-base" ]; then
		_fresh_say "reusing the pristine base $base (built $(cat "$base/.iketcp-fresh-base"))"
		return 0
	fi
	if ! command -v debootstrap >/dev/null; then
		if ! command -v apt-get >/dev/null; then
			echo "debootstrap missing: install it and Debian's archive keyring (README.md, \"Other distributions\")" >&2
			return 1
		fi
		_fresh_say "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null || {
			echo "could not install debootstrap (apt-get install debootstrap)" >&2
			return 1
		}
	fi
	rm -rf --one-file-system "$base" "$base.tmp"
	_fresh_say "debootstrap --variant=minbase bookworm from $FRESH_MIRROR into $base"
	if ! debootstrap --variant=minbase bookworm "$base.tmp" "$FRESH_MIRROR" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "debootstrap failed (log: $log)" >&2
		return 1
	fi
	# What Debian's installer writes: the release, its updates and security.
	cat >"$base.tmp/etc/apt/sources.list" <<EOF
deb $FRESH_MIRROR bookworm main
deb $FRESH_MIRROR bookworm-updates main
deb $FRESH_SECURITY bookworm-security main
EOF
	rm -rf "$base.tmp/var/cache/apt/archives/"*.deb
	date -u +%Y-%m-%dT%H:%M:%SZ >"$base.tmp/.iketcp-fresh-base"
	mv "$base.tmp" "$base"
	# shellcheck disable=SC2034 # read by the scripts that source this
	FRESH_BASE_BUILT=1
}

# fresh_chroot ROOT VAR=VALUE... -- CMD...: CMD (with only the given
# environment) chrooted into ROOT, in new mount and PID namespaces: /proc,
# /sys, /dev (for /dev/net/tun), a private /run (for `ip netns`) and a fresh
# /dev/shm are mounted in that mount namespace only, so they disappear with
# it, and every process CMD started dies with its PID namespace, also when
# it fails or is interrupted (killing the unshare kills them all).
fresh_chroot() {
	(fresh_chroot_exec "$@")
}

fresh_chroot_exec() {
	local root=$1
	shift
	# The inner shell mounts into the new mount namespace only (private
	# propagation), then chroots. $1 is the root, the rest env's arguments.
	# shellcheck disable=SC2016
	exec unshare --mount --pid --fork --kill-child --propagation private \
		/bin/bash -c '
			set -e
			r=$1
			shift
			# A mount point of its own: `ip netns exec` makes / a slave
			# mount, which fails (EINVAL) on a plain directory.
			mount --bind "$r" "$r"
			mount -t proc proc "$r/proc"
			mount -t sysfs sysfs "$r/sys"
			mount --rbind /dev "$r/dev"
			mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
			mount -t tmpfs -o mode=755 tmpfs "$r/run"
			mkdir -p "$r/run/lock"
			envs=()
			while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
				envs+=("$1")
				shift
			done
			shift
			exec chroot "$r" /usr/bin/env -i "${envs[@]}" "$@"
		' fresh "$root" "$@"
}
