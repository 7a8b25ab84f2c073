# shellcheck shell=bash
# ci/deps.sh: the Debian 12 packages that ci/demo.sh and ci/test.sh need,
# how they are installed, and a check of each capability afterwards.
# Sourced (definitions only, no side effects) by ci/demo.sh, ci/test.sh and
# tests/e2e/lib.sh.
#
# Every package is named here, also those that a plain `apt-get install`
# would only pull in as Recommends: installs use --no-install-recommends, so
# that what works on this machine works on a minimal one too.
# ci/fresh-check.sh proves the lists complete on a pristine Debian 12 root;
# run it after changing them.

# shellcheck disable=SC2034 # DEPS_* are read by the scripts that source this
# Build: gcc, make, cmake (>= 3.18), pkg-config, OpenSSL 3 headers (TLS).
DEPS_BUILD=(build-essential cmake pkg-config libssl-dev)

# strongSwan in network namespaces (the gateway demo and tests/e2e).
# shellcheck disable=SC2034
DEPS_GATEWAY=(
	strongswan-charon strongswan-swanctl
	# openssl and gcm plugins: every DH group and AEAD the e2e configs use.
	# Only a Recommends of libstrongswan, so never there by accident.
	libstrongswan-standard-plugins
	# kernel-libipsec: ESP in user space (no kernel XFRM needed)
	libcharon-extra-plugins
	# nft, ip/ss, ping, sysctl, python3 (tests/e2e/lib.sh and the scenarios)
	nftables iproute2 iputils-ping procps python3
)

# ci/test.sh on top of both: unit tests, clang-format, ASan/UBSan and
# libFuzzer (the runtimes are not a dependency of clang-14 in Debian 12),
# and the tools the e2e scenarios run. tshark and tcpdump are also what the
# ctest wireshark_dissector runs (tests/wireshark; it fails without tshark
# when CI is set); tshark's package asks whether non-root users may capture,
# which DEBIAN_FRONTEND=noninteractive (deps_install) answers with its default.
# shellcheck disable=SC2034
DEPS_TEST=(
	libcmocka-dev
	clang clang-format libclang-rt-14-dev
	tshark tcpdump iperf3 openssl tinyproxy-bin haproxy
	# xxd: tests/loopback/test_cli.py makes the dumps iketcp decode reads
	xxd
)
# ci/package.sh (the package step of ci/test.sh): dpkg-buildpackage with
# debhelper (>= 13.11 for dh_installsysusers), fakeroot, lintian, and
# debootstrap for the pristine root the .debs are installed in.
# shellcheck disable=SC2034
DEPS_PACKAGE=(dpkg-dev debhelper fakeroot lintian debootstrap)

# Not here: udptunnel, which only bench/relay-bench.sh uses (as an optional
# comparison; it skips that path without it).

# The plugins every e2e / demo charon loads (tests/e2e/lib.sh writes this
# list into strongswan.conf), and the Debian 12 package with each.
DEPS_CHARON_PLUGINS="random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici"
deps_plugin_package() {
	case "$1" in
	openssl | gcm | aesni | agent | connmark) echo libstrongswan-standard-plugins ;;
	kernel-libipsec) echo libcharon-extra-plugins ;;
	socket-default | updown | counters | bypass-lan) echo strongswan-libcharon ;;
	vici) echo strongswan-swanctl ;;
	*) echo libstrongswan ;;
	esac
}
DEPS_PLUGIN_DIR=/usr/lib/ipsec/plugins

# Who is talking (set by the script that sources this file).
DEPS_WHO=${DEPS_WHO:-ci}

# deps_as_root CMD...: CMD as root; through sudo only when not root and sudo
# is installed; otherwise says what to do and fails.
deps_as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "$DEPS_WHO: installing packages needs root, and sudo is not installed: run it as root" >&2
		return 1
	fi
}

# deps_missing PKG...: prints the packages that are not installed.
deps_missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || echo "$p"
	done
}

# deps_install PKG...: apt-get installs those that are missing (one apt-get
# update first). Prints what it did.
deps_install() {
	local missing
	if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
		echo "$DEPS_WHO: no apt/dpkg here: Debian 12 is the supported platform (README.md, \"Other distributions\")" >&2
		return 1
	fi
	mapfile -t missing < <(deps_missing "$@")
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "all $# packages installed"
		return 0
	fi
	echo "installing ${#missing[@]} of $# packages: ${missing[*]}"
	deps_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
		{
			echo "$DEPS_WHO: apt-get update failed" >&2
			return 1
		}
	deps_as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		{
			echo "$DEPS_WHO: apt-get install ${missing[*]} failed" >&2
			return 1
		}
}

# ---- capability checks: each prints one line per missing capability --------
# ---- (what is missing, and the package that has it) and returns 1 -------------

_deps_bad=0
_deps_need() { # _deps_need PACKAGE WHAT: report one missing capability
	echo "$DEPS_WHO: $2 missing: apt-get install $1" >&2
	_deps_bad=1
}
_deps_run() { # _deps_run CMD...: CMD succeeds (output discarded)
	"$@" >/dev/null 2>&1 </dev/null
}

# deps_check_build: a C compiler and make, cmake >= 3.18, pkg-config and
# OpenSSL >= 3 that a program can be compiled and linked against.
deps_check_build() {
	_deps_bad=0
	_deps_run gcc --version || _deps_need build-essential "gcc"
	_deps_run make --version || _deps_need build-essential "make"
	_deps_run cmake --version || _deps_need cmake "cmake"
	_deps_run pkg-config --version || _deps_need pkg-config "pkg-config"
	if _deps_run cmake --version; then
		local v
		v=$(cmake --version | sed -n '1s/.* \([0-9]*\.[0-9]*\).*/\1/p')
		[ "$(printf '%s\n3.18\n' "$v" | sort -V | head -n1)" = 3.18 ] ||
			_deps_need cmake "cmake >= 3.18 (found $v)"
	fi
	if _deps_run gcc --version; then
		local t
		t=$(mktemp -d)
		printf '#include <openssl/ssl.h>\n#if OPENSSL_VERSION_MAJOR < 3\n#error old\n#endif\nint main(void) { return SSL_CTX_new(TLS_method()) == NULL; }\n' >"$t/ssl.c"
		_deps_run gcc "$t/ssl.c" -o "$t/ssl" -lssl -lcrypto || _deps_need libssl-dev "OpenSSL 3 headers/libraries"
		rm -rf "$t"
	fi
	return "$_deps_bad"
}

# deps_check_gateway: charon with every plugin the e2e configs load, swanctl,
# the TUN device kernel-libipsec needs, nft, ip, ss, ping, sysctl, python3.
deps_check_gateway() {
	_deps_bad=0
	[ -x /usr/lib/ipsec/charon ] || _deps_need strongswan-charon "/usr/lib/ipsec/charon"
	# (swanctl --version asks a running charon; talking to one is checked
	# when tests/e2e/lib.sh starts charon and reads its plugin list.)
	command -v swanctl >/dev/null 2>&1 || _deps_need strongswan-swanctl "swanctl"
	# One line per package: the plugins it should have brought.
	local p pkg
	local -A lost=()
	for p in $DEPS_CHARON_PLUGINS; do
		[ -e "$DEPS_PLUGIN_DIR/libstrongswan-$p.so" ] && continue
		pkg=$(deps_plugin_package "$p")
		lost[$pkg]="${lost[$pkg]:+${lost[$pkg]} }$p"
	done
	for pkg in "${!lost[@]}"; do
		_deps_need "$pkg" "charon plugins ($DEPS_PLUGIN_DIR): ${lost[$pkg]}"
	done
	_deps_run nft --version || _deps_need nftables "nft"
	_deps_run ip -V || _deps_need iproute2 "ip"
	_deps_run ss -V || _deps_need iproute2 "ss"
	_deps_run ping -V || _deps_need iputils-ping "ping"
	_deps_run sysctl --version || _deps_need procps "sysctl"
	_deps_run python3 -c 'import asyncio, ssl, struct' || _deps_need python3 "python3 (with ssl, asyncio)"
	if [ ! -c /dev/net/tun ]; then
		echo "$DEPS_WHO: /dev/net/tun missing (kernel-libipsec needs it): modprobe tun" >&2
		_deps_bad=1
	fi
	return "$_deps_bad"
}

# deps_check_test: cmocka, clang-format, clang with the ASan, UBSan and
# libFuzzer runtimes (a fuzz target is built and run once), and the e2e tools.
deps_check_test() {
	_deps_bad=0
	_deps_run pkg-config --exists cmocka || _deps_need libcmocka-dev "cmocka (pkg-config cmocka)"
	_deps_run clang-format --version || _deps_need clang-format "clang-format"
	if _deps_run clang --version; then
		local t
		t=$(mktemp -d)
		printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$t/f.c"
		if _deps_run clang -fsanitize=fuzzer,address,undefined "$t/f.c" -o "$t/f"; then
			_deps_run "$t/f" -runs=1 || _deps_need libclang-rt-14-dev "a working libFuzzer/ASan runtime"
		else
			_deps_need libclang-rt-14-dev "clang's libFuzzer/ASan/UBSan runtimes"
		fi
		rm -rf "$t"
	else
		_deps_need clang "clang"
	fi
	_deps_run tshark -v || _deps_need tshark "tshark"
	_deps_run tcpdump --version || _deps_need tcpdump "tcpdump"
	_deps_run xxd -v || _deps_need xxd "xxd"
	_deps_run iperf3 -v || _deps_need iperf3 "iperf3"
	_deps_run openssl version || _deps_need openssl "openssl"
	_deps_run tinyproxy -v || _deps_need tinyproxy-bin "tinyproxy"
	_deps_run haproxy -v || _deps_need haproxy "haproxy"
	return "$_deps_bad"
}

# deps_check_package: what ci/package.sh builds, checks and installs with:
# dpkg-buildpackage, debhelper with dh_installsysusers, the build
# dependencies in debian/control, fakeroot, lintian, debootstrap, unshare,
# flock.
deps_check_package() {
	_deps_bad=0
	_deps_run dpkg-buildpackage --version || _deps_need dpkg-dev "dpkg-buildpackage"
	command -v dh >/dev/null 2>&1 || _deps_need debhelper "dh (debhelper)"
	command -v dh_installsysusers >/dev/null 2>&1 || _deps_need debhelper "dh_installsysusers (debhelper >= 13.11)"
	if _deps_run dpkg-buildpackage --version && [ -f debian/control ]; then
		_deps_run dpkg-checkbuilddeps || _deps_need "$(dpkg-checkbuilddeps 2>&1 |
			sed -n 's/.*Unmet build dependencies: //p')" "build dependencies of debian/control"
	fi
	_deps_run fakeroot -v || _deps_need fakeroot "fakeroot"
	_deps_run lintian --version || _deps_need lintian "lintian"
	command -v debootstrap >/dev/null 2>&1 || _deps_need debootstrap "debootstrap"
	_deps_run unshare --version || _deps_need util-linux "unshare"
	_deps_run flock --version || _deps_need util-linux "flock"
	return "$_deps_bad"
}

# deps_charon_loaded NS_LABEL STATS: the one capability the files cannot show:
# charon really loaded every plugin. STATS is `swanctl --stats` output.
# Prints one line naming the package of each plugin missing; returns 1.
deps_charon_loaded() {
	local label=$1 loaded p bad=0
	loaded=" $(sed -n 's/^loaded plugins: *//p' <<<"$2") "
	for p in $DEPS_CHARON_PLUGINS; do
		if [[ "$loaded" != *" $p "* ]]; then
			echo "$label: charon did not load plugin '$p' (Debian 12 package: $(deps_plugin_package "$p"))" >&2
			bad=1
		fi
	done
	return "$bad"
}
