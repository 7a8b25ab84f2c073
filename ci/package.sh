#!/bin/bash
# ci/package.sh: build the Debian packages (debian/) and prove that they
# install and work on a pristine Debian 12.
#
#   ./ci/package.sh              build, lintian, install check (root)
#   ./ci/package.sh --no-install build and lintian only (no root needed)
#
# 1. build: the repository's files (tracked, plus untracked ones not ignored;
#    uncommitted changes included) are copied to build/ci-package/src, and
#    `dpkg-buildpackage -us -uc -b` runs there, so its ../*.deb land in
#    build/ci-package/ and the work tree gets no debian/ build litter:
#      build/ci-package/iketcpd_VERSION_ARCH.deb
#      build/ci-package/libiketcp0_VERSION_ARCH.deb
#      build/ci-package/libiketcp-dev_VERSION_ARCH.deb
#    (and -dbgsym packages, the .changes and .buildinfo; build.log).
# 2. lintian --pedantic on the .changes: any tag not overridden (with its
#    reason) in debian/*.lintian-overrides fails, info and pedantic ones too
#    (lintian.txt; overridden tags are listed as O:).
# 3. install check, as root: a copy of the pristine Debian 12 root of
#    ci/fresh-check.sh (ci/fresh-lib.sh: debootstrap once, cached in
#    FRESH_DIR), and in it tests/package/check-installed.sh: apt-get install
#    of the three .debs (Depends from the Debian archive this host's apt
#    sources name), iketcpd -n on the shipped config, iketcp --version, the
#    iketcpd account, the unit (systemd-analyze verify, not enabled), a
#    program built with pkg-config and with find_package(iketcp), then a
#    purge. The copy is deleted afterwards; apt's downloads are kept in
#    FRESH_DIR/apt-archives for the next run.
#
# Not root: steps 1-2 run as the user, step 3 through sudo when installed.
# Environment: JOBS (build jobs, default nproc), FRESH_DIR (ci/fresh-lib.sh).
# Time: about 1 minute to build, 2-3 to install-check (plus ~1 for
# debootstrap when FRESH_DIR has no base root yet).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/ci-package
JOBS=${JOBS:-$(nproc)}
INSTALL=1
INSTALL_ONLY=0
for arg in "$@"; do
	case "$arg" in
	--no-install) INSTALL=0 ;;
	--install-only) INSTALL_ONLY=1 ;; # internal: step 3 alone (through sudo)
	-h | --help)
		sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "ci/package.sh: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

say() {
	printf '[package %s] %s\n' "$(date +%H:%M:%S)" "$*"
}
die() {
	echo "ci/package.sh: $*" >&2
	exit 1
}

git rev-parse --verify -q HEAD >/dev/null || die "$ROOT is not a git checkout with a commit"

DEPS_WHO=ci/package.sh
# shellcheck source=ci/deps.sh
. "$ROOT/ci/deps.sh"

# The version in debian/changelog must be the project() version of
# CMakeLists.txt (a native package: one version for both).
VERSION=$(dpkg-parsechangelog -l debian/changelog -S Version)
CMAKE_VERSION=$(sed -n 's/^project(iketcp VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[ "$VERSION" = "$CMAKE_VERSION" ] ||
	die "debian/changelog says $VERSION, CMakeLists.txt's project() $CMAKE_VERSION: add a changelog entry (dch -v $CMAKE_VERSION)"
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
DEBS=("iketcpd_${VERSION}_$ARCH.deb" "libiketcp0_${VERSION}_$ARCH.deb" "libiketcp-dev_${VERSION}_$ARCH.deb")

build() {
	deps_install "${DEPS_BUILD[@]}" "${DEPS_PACKAGE[@]}"
	if ! deps_check_build || ! deps_check_package; then
		die "stopping: the capabilities above are missing"
	fi
	rm -rf "$OUT"
	mkdir -p "$OUT/src"
	# Files deleted in the work tree but still in the index are left out.
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$f" ] && printf '%s\0' "$f"
		done | tar --null -T - -cf - | tar -xf - -C "$OUT/src"
	say "dpkg-buildpackage -us -uc -b in $OUT/src (log: $OUT/build.log)"
	if ! (cd "$OUT/src" && dpkg-buildpackage -us -uc -b -j"$JOBS") >"$OUT/build.log" 2>&1; then
		tail -n 40 "$OUT/build.log" >&2
		die "dpkg-buildpackage failed (log: $OUT/build.log)"
	fi
	# A symbol added to the library without debian/libiketcp0.symbols
	# knowing it only warns; show it here so it is seen.
	grep -A20 '^dpkg-gensymbols: warning' "$OUT/build.log" || true
	local d
	for d in "${DEBS[@]}"; do
		[ -f "$OUT/$d" ] || die "$d was not built"
		echo "  $OUT/$d: $(dpkg-deb -f "$OUT/$d" Depends)"
	done

	# Every manual page of man/ is in iketcpd (CMakeLists.txt installs them
	# by a glob, debian/iketcpd.install takes usr/share/man whole).
	local page want
	for page in man/*.[1-8]; do
		want=./usr/share/man/man${page##*.}/${page#man/}.gz
		dpkg-deb -c "$OUT/${DEBS[0]}" | awk '{ print $6 }' | grep -qxF "$want" ||
			die "$page is not in ${DEBS[0]} (as $want)"
	done
	echo "  man pages in ${DEBS[0]}: $(cd man && echo *.[1-8])"

	say "lintian --pedantic on $OUT/iketcp_${VERSION}_$ARCH.changes"
	# --show-overrides lists the overridden tags too (O:), but then lintian's
	# --fail-on counts them as well: the verdict comes from the tag letters.
	local rc=0 tags
	lintian --pedantic --display-info --show-overrides \
		"$OUT/iketcp_${VERSION}_$ARCH.changes" >"$OUT/lintian.txt" 2>&1 || rc=$?
	# Running as root only makes lintian say it would rather not.
	grep -v '^running with root privileges' "$OUT/lintian.txt" || true
	# 2: error tags found (judged below); anything else: lintian broke.
	[ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || die "lintian failed (exit $rc)"
	tags=$(grep -cE '^[EWIPX]: ' "$OUT/lintian.txt" || true)
	[ "$tags" -eq 0 ] ||
		die "lintian: $tags tags above without an override (debian/*.lintian-overrides, with the reason; docs/packaging.md lists them)"
	echo "lintian: no tag without a reason (overridden: $(grep -c '^O:' "$OUT/lintian.txt" || true))"
}

# ---- step 3: install check in a pristine Debian 12 root ---------------------
RUNROOT=""
CHILD=""
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
	local rc=$? m
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		kill -TERM "$CHILD" 2>/dev/null # unshare --kill-child: takes the rest
		wait "$CHILD" 2>/dev/null
	fi
	if [ -n "$RUNROOT" ] && [ -d "$RUNROOT" ]; then
		m=$(awk -v r="$RUNROOT" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo)
		if [ -n "$m" ]; then
			echo "ci/package.sh: mounts left under $RUNROOT, not deleting it:" >&2
			echo "$m" >&2
			[ "$rc" -ne 0 ] || rc=1
		else
			rm -rf --one-file-system "$RUNROOT"
		fi
	fi
	exit "$rc"
}

install_check() {
	local d
	for d in "${DEBS[@]}"; do
		[ -f "$OUT/$d" ] || die "$OUT/$d missing: run ./ci/package.sh without --install-only"
	done
	# shellcheck source=ci/fresh-lib.sh
	. "$ROOT/ci/fresh-lib.sh"
	case "$FRESH_DIR/" in
	"$ROOT"/*) die "FRESH_DIR must be outside the repository" ;;
	esac
	mkdir -p "$FRESH_DIR/logs" "$FRESH_DIR/apt-archives"
	fresh_base_ensure 0 "$FRESH_DIR/logs/$(date +%Y%m%d-%H%M%S)-debootstrap.log" ||
		die "no pristine base root"

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	RUNROOT=$FRESH_DIR/pkg.$$
	say "install check in a copy of $FRESH_BASE: $RUNROOT"
	cp -a "$FRESH_BASE" "$RUNROOT"
	rm -f "$RUNROOT/.iketcp-fresh-base"
	cp -L /etc/resolv.conf "$RUNROOT/etc/resolv.conf"
	# The root shares this host's network namespace: no package script may
	# start a daemon in it (there is no systemd to start iketcpd anyway).
	printf '#!/bin/sh\n# ci/package.sh: no services in this chroot\nexit 101\n' >"$RUNROOT/usr/sbin/policy-rc.d"
	chmod 755 "$RUNROOT/usr/sbin/policy-rc.d"
	find "$FRESH_DIR/apt-archives" -name '*.deb' -exec cp -t "$RUNROOT/var/cache/apt/archives/" {} +
	local dir=$RUNROOT/root/iketcp-package
	mkdir -p "$dir"
	cp "${DEBS[@]/#/$OUT/}" "$dir/"
	cp tests/package/check-installed.sh tests/package/consumer.c tests/package/CMakeLists.txt "$dir/"

	local log=$OUT/install-check.log rc=0
	say "tests/package/check-installed.sh in the root (log: $log)"
	: >"$log"
	fresh_chroot_exec "$RUNROOT" HOME=/root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -- \
		/root/iketcp-package/check-installed.sh /root/iketcp-package "$VERSION" >>"$log" 2>&1 &
	CHILD=$!
	tail -n +1 -f --pid="$CHILD" "$log" || true
	wait "$CHILD" || rc=$?
	CHILD=""
	find "$RUNROOT/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t "$FRESH_DIR/apt-archives/" {} +
	[ "$rc" -eq 0 ] || die "the install check failed (exit $rc; log: $log)"
}

if [ "$INSTALL_ONLY" = 0 ]; then
	build
fi
if [ "$INSTALL" = 1 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		install_check
	elif command -v sudo >/dev/null 2>&1; then
		say "the install check needs root (chroot, mounts): through sudo"
		sudo env ${FRESH_DIR:+FRESH_DIR="$FRESH_DIR"} "$ROOT/ci/package.sh" --install-only
	else
		die "the install check needs root (chroot, mounts) and sudo is not installed: run it as root, or --no-install"
	fi
fi
say "packages: ${DEBS[*]/#/$OUT/}"
say "RESULT: PASS"
