#!/bin/bash
# ci/test.sh: the one command that builds iketcp and runs every test.
#
#   ./ci/test.sh             as root (a fresh Debian 12 has no sudo); not
#                            root: apt-get and the e2e suite go through sudo
#                            when it is installed, else it says to run as root
#
# On a fresh Debian 12 machine it first installs what it needs with apt
# (only when something is missing). Then, in order, failing fast:
#
#   deps     apt packages (ci/deps.sh: build, unit tests, fuzzing, end-to-end
#            tests), then a check of each capability they provide
#   format   ci/format-check.sh: clang-format --dry-run -Werror
#   release  gcc Release build with -Werror, ctest, DESTDIR install check
#   package  ci/package.sh: dpkg-buildpackage into build/ci-package, lintian,
#            the three .debs installed with apt in a pristine Debian 12 root
#            (ci/fresh-lib.sh) and checked there (tests/package)
#   asan     clang Debug build with ASan+UBSan (IKETCP_SANITIZE), ctest
#   fuzz     clang libFuzzer build (IKETCP_FUZZ); every fuzz/fuzz_*.c runs
#            FUZZ_SECONDS seconds on a scratch copy of its seed corpus
#   e2e      tests/e2e/run-all.sh if present and executable
#
# Environment:
#   FUZZ_SECONDS  seconds per fuzz target (default 30)
#   E2E_TIMEOUT   seconds before the e2e suite is killed (default 2700)
#   JOBS          parallel build/test jobs (default: nproc)
#   CI_SKIP       space-separated steps to skip, for local runs only
#                 (e.g. CI_SKIP="fuzz e2e"); skipped steps show as SKIPPED
#
# Build trees live in build/ci-<step> and are recreated on every run. The
# committed corpora are never written to: each fuzz run works on a copy in
# build/ci-fuzz/run/<target>/ (crash files land in .../artifacts/).
# Time: a few minutes plus the e2e suite (and apt on a fresh machine). Each
# unit test is limited by ctest --timeout, each fuzz target by FUZZ_SECONDS
# (plus a hard kill 300 s later), the e2e suite by E2E_TIMEOUT (45 min), which
# keeps a run well under the 90-minute CI budget.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
E2E_TIMEOUT=${E2E_TIMEOUT:-2700}
JOBS=${JOBS:-$(nproc)}
CI_SKIP=${CI_SKIP:-}
export DEBIAN_FRONTEND=noninteractive

case "$FUZZ_SECONDS$E2E_TIMEOUT$JOBS" in
*[!0-9]*)
	echo "ci/test.sh: FUZZ_SECONDS, E2E_TIMEOUT and JOBS must be whole numbers" >&2
	exit 2
	;;
esac

# Every Debian 12 package the build and the tests need, named in ci/deps.sh
# (also what --no-install-recommends leaves out), which also checks each
# capability after installing: compilers, OpenSSL 3, cmocka, the ASan/UBSan/
# libFuzzer runtimes, charon with every plugin the e2e configs load, tshark,
# haproxy, tinyproxy, ...
DEPS_WHO=ci/test.sh
# shellcheck source=ci/deps.sh
. "$ROOT/ci/deps.sh"
PACKAGES=("${DEPS_BUILD[@]}" "${DEPS_GATEWAY[@]}" "${DEPS_TEST[@]}" "${DEPS_PACKAGE[@]}")

STEPS=(deps format release package asan fuzz e2e)
declare -A STEP_TITLE=(
	[deps]="install missing apt packages"
	[format]="clang-format check"
	[release]="gcc Release build (-Werror) + ctest + install"
	[package]="Debian packages: build, lintian, install check"
	[asan]="clang ASan+UBSan build + ctest"
	[fuzz]="libFuzzer build + ${FUZZ_SECONDS}s per target"
	[e2e]="end-to-end tests (tests/e2e/run-all.sh)"
)
declare -A STEP_RESULT=() STEP_SECS=()
FUZZ_REPORT=()
CURRENT=""
CURRENT_T0=0
T_START=$SECONDS

fmt_secs() {
	printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

summary() {
	local rc=$1
	if [ -n "$CURRENT" ]; then
		STEP_RESULT[$CURRENT]=FAIL
		STEP_SECS[$CURRENT]=$((SECONDS - CURRENT_T0))
	fi
	echo
	echo "==================================================================="
	echo " ci/test.sh summary"
	echo "==================================================================="
	printf ' %-3s %-8s %-48s %-8s %s\n' "#" step description result time
	local i=0 s
	for s in "${STEPS[@]}"; do
		i=$((i + 1))
		local res=${STEP_RESULT[$s]:-"not run"} secs=""
		[ -n "${STEP_SECS[$s]:-}" ] && secs=$(fmt_secs "${STEP_SECS[$s]}")
		printf ' %-3s %-8s %-48s %-8s %s\n' "$i" "$s" "${STEP_TITLE[$s]}" "$res" "$secs"
	done
	printf ' %-3s %-8s %-48s %-8s %s\n' "" total "" "" "$(fmt_secs $((SECONDS - T_START)))"
	if [ "${#FUZZ_REPORT[@]}" -gt 0 ]; then
		echo
		printf ' %-22s %10s %8s %6s %6s %6s\n' "fuzz target" runs exec/s cov ft corpus
		printf ' %s\n' "${FUZZ_REPORT[@]}"
	fi
	echo "==================================================================="
	if [ "$rc" -eq 0 ]; then
		echo " RESULT: PASS"
	else
		echo " RESULT: FAIL (step '${CURRENT:-?}', exit code $rc)"
	fi
}
trap 'summary $?' EXIT

# step NAME FUNCTION: runs one step with a banner and its duration. A step
# function sets STEP_STATUS=SKIPPED when it decides there is nothing to do.
step() {
	local name=$1 fn=$2
	local n=0 s
	for s in "${STEPS[@]}"; do
		n=$((n + 1))
		[ "$s" = "$name" ] && break
	done
	echo
	echo "==================================================================="
	echo "==> [$n/${#STEPS[@]}] $name: ${STEP_TITLE[$name]}   ($(date -u +%H:%M:%SZ))"
	echo "==================================================================="
	if [[ " $CI_SKIP " == *" $name "* ]]; then
		echo "skipped: CI_SKIP contains '$name'"
		STEP_RESULT[$name]=SKIPPED
		STEP_SECS[$name]=0
		return 0
	fi
	CURRENT=$name
	CURRENT_T0=$SECONDS
	STEP_STATUS=PASS
	"$fn"
	STEP_RESULT[$name]=$STEP_STATUS
	STEP_SECS[$name]=$((SECONDS - CURRENT_T0))
	CURRENT=""
	echo "<== $name: $STEP_STATUS in $(fmt_secs "${STEP_SECS[$name]}")"
}

run() {
	echo "+ $*"
	"$@"
}

# ---- steps ------------------------------------------------------------------

do_deps() {
	# Say it now, not after the builds: the e2e step will need root.
	if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1 && [[ " $CI_SKIP " != *" e2e "* ]]; then
		echo "ci/test.sh: the e2e tests need root (network namespaces) and sudo is not installed: run ci/test.sh as root" >&2
		return 1
	fi
	deps_install "${PACKAGES[@]}"
	local ok=1
	deps_check_build || ok=0
	deps_check_gateway || ok=0
	deps_check_test || ok=0
	deps_check_package || ok=0
	if [ "$ok" = 0 ]; then
		echo "ci/test.sh: stopping: the capabilities above are missing" >&2
		return 1
	fi
	echo "checked: gcc, make, cmake, pkg-config, OpenSSL 3, cmocka, clang-format, clang with"
	echo "  ASan/UBSan/libFuzzer (a fuzz target built and run), charon + plugins, swanctl, nft,"
	echo "  ip, ss, ping, sysctl, python3, /dev/net/tun, tshark, tcpdump, iperf3, openssl,"
	echo "  tinyproxy, haproxy, dpkg-buildpackage, debhelper (dh_installsysusers), the"
	echo "  build dependencies of debian/control, fakeroot, lintian, debootstrap"
	echo "gcc:     $(gcc --version | head -n1)"
	echo "clang:   $(clang --version | head -n1)"
	echo "cmake:   $(cmake --version | head -n1)"
	echo "charon:  strongSwan $(dpkg-query -W -f='${Version}' strongswan-charon)"
	echo "haproxy: $(haproxy -v 2>&1 | head -n1)"
	echo "kernel:  $(uname -sr), $(nproc) CPUs"
}

do_format() {
	run ci/format-check.sh
}

# configure DIR ARGS...: a fresh build tree.
configure() {
	local dir=$1
	shift
	rm -rf "$dir"
	run cmake -S "$ROOT" -B "$dir" "$@"
	run cmake --build "$dir" -j"$JOBS"
}

do_release() {
	local b=build/ci-release
	configure "$b" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc \
		-DIKETCP_WERROR=ON -DIKETCP_TESTS=ON -DIKETCP_BENCH=ON
	run ctest --test-dir "$b" --output-on-failure --no-tests=error --timeout 300 -j"$JOBS"
	# PREFIX/DESTDIR install: headers, both libraries, pkg-config file, CMake
	# package config, CLI.
	local dest=$ROOT/$b/destdir f
	DESTDIR=$dest run cmake --install "$b" --prefix /usr/local >/dev/null
	for f in include/iketcp/iketcp.h libiketcp.a libiketcp.so.0 pkgconfig/iketcp.pc \
		cmake/iketcp/iketcpConfig.cmake bin/iketcp; do
		if [ -z "$(find "$dest/usr/local" -path "*/$f" -print -quit)" ]; then
			echo "install check: */$f missing under $dest/usr/local" >&2
			return 1
		fi
	done
	echo "install check: OK ($(find "$dest" -type f | wc -l) files under DESTDIR/usr/local)"
}

do_package() {
	# Not root: ci/package.sh uses sudo for its install check, or says why not.
	run ci/package.sh
}

do_asan() {
	local b=build/ci-asan
	configure "$b" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
		-DIKETCP_SANITIZE=ON -DIKETCP_WERROR=ON -DIKETCP_TESTS=ON
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run ctest --test-dir "$b" --output-on-failure --no-tests=error --timeout 600 -j"$JOBS"
}

# libFuzzer flags from fuzz/<target>.options ([libfuzzer] key = value).
fuzz_options() {
	local f=fuzz/$1.options
	[ -f "$f" ] || return 0
	sed -n '/^\[libfuzzer\]/,/^\[/{/^[a-z_]* *=/{s/ *= */=/;s/^/-/;p}}' "$f"
}

do_fuzz() {
	local b=build/ci-fuzz
	configure "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DIKETCP_FUZZ=ON

	local srcs=(fuzz/fuzz_*.c) src
	if [ ! -e "${srcs[0]}" ]; then
		echo "no fuzz targets in fuzz/" >&2
		return 1
	fi
	for src in "${srcs[@]}"; do
		local t scratch opts log rc=0
		t=$(basename "$src" .c)
		scratch=$ROOT/$b/run/$t
		log=$scratch/fuzz.log
		rm -rf "$scratch"
		mkdir -p "$scratch/corpus" "$scratch/artifacts"
		if [ -d "fuzz/corpus/$t" ]; then
			cp -a "fuzz/corpus/$t/." "$scratch/corpus/"
		else
			echo "warning: no seed corpus fuzz/corpus/$t" >&2
		fi
		mapfile -t opts < <(fuzz_options "$t")
		# fuzz/<target>.dict if the target has its own, else the shared one.
		local dict=$ROOT/fuzz/iketcp.dict
		[ -f "fuzz/$t.dict" ] && dict=$ROOT/fuzz/$t.dict
		opts+=("-dict=$dict")
		echo
		echo "--- $t: ${FUZZ_SECONDS}s, $(find "$scratch/corpus" -type f | wc -l) seeds, options: ${opts[*]}"
		# -timeout: one input taking longer is a finding (a hang). The outer
		# timeout only guards against libFuzzer itself not stopping.
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			timeout -k 10 $((FUZZ_SECONDS + 300)) \
			"$ROOT/$b/$t" -max_total_time="$FUZZ_SECONDS" -timeout=25 -rss_limit_mb=2048 \
			-print_final_stats=1 \
			-artifact_prefix="$scratch/artifacts/" "${opts[@]}" \
			"$scratch/corpus" >"$log" 2>&1 || rc=$?
		local artifacts
		artifacts=$(find "$scratch/artifacts" -type f)
		if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
			echo "!!! $t FAILED (exit code $rc). Last lines of $log:" >&2
			tail -n 60 "$log" >&2
			echo "!!! artifacts:" >&2
			echo "${artifacts:-(none)}" >&2
			local a
			for a in $artifacts; do
				echo "!!! reproduce: $b/$t $a" >&2
			done
			return 1
		fi
		local done_line runs eps cov ft corp
		done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1 || true)
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
		ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
		corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$done_line")
		echo "$done_line"
		FUZZ_REPORT+=("$(printf '%-22s %10s %8s %6s %6s %6s' "$t" "${runs:-?}" "${eps:-?}" \
			"${cov:-?}" "${ft:-?}" "${corp:-?}")")
	done
	echo
	echo "fuzz: no crashes. Grown corpora (not committed) are in $b/run/<target>/corpus;"
	echo "      merge useful ones with: <target> -merge=1 fuzz/corpus/<target> $b/run/<target>/corpus"
}

do_e2e() {
	local e2e=tests/e2e/run-all.sh
	if [ -x "$e2e" ]; then
		# Network namespaces need root: sudo only when not root and installed.
		local sudo=()
		if [ "$(id -u)" -ne 0 ]; then
			if ! command -v sudo >/dev/null 2>&1; then
				echo "ci/test.sh: the e2e tests need root (network namespaces) and sudo is not installed: run ci/test.sh as root" >&2
				return 1
			fi
			sudo=(sudo)
		fi
		# The e2e suite finds the binaries built above through these.
		run ${sudo[@]+"${sudo[@]}"} env IKETCP_BUILD_DIR="$ROOT/build/ci-release" \
			IKETCP_ASAN_BUILD_DIR="$ROOT/build/ci-asan" \
			timeout -k 30 "$E2E_TIMEOUT" "$e2e"
	elif [ -e "$e2e" ]; then
		echo "WARNING: $e2e exists but is not executable (chmod +x it); skipping e2e"
		STEP_STATUS=SKIPPED
	else
		echo "$e2e not present yet; skipping e2e"
		STEP_STATUS=SKIPPED
	fi
}

echo "ci/test.sh in $ROOT ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git'))," \
	"FUZZ_SECONDS=$FUZZ_SECONDS JOBS=$JOBS${CI_SKIP:+ CI_SKIP=\"$CI_SKIP\"}"
step deps do_deps
step format do_format
step release do_release
step package do_package
step asan do_asan
step fuzz do_fuzz
step e2e do_e2e
