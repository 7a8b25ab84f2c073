#!/bin/bash
# tests/package/check-installed.sh DIR VERSION: installs the three packages
# from DIR (iketcpd, libiketcp0, libiketcp-dev .debs; this directory's files
# beside them) with apt and checks that they work. Run by ci/package.sh as
# root inside a pristine Debian 12 root (never on a developer's machine: it
# installs and purges packages). Ends with "N passed, 0 failed".
# shellcheck disable=SC2016 # the bash -c and dpkg-query lines expand later
set -euo pipefail
dir=$1
version=$2
cd "$dir"
export DEBIAN_FRONTEND=noninteractive
pass=0
fail=0
ok() {
	echo "PASS: $*"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL: $*" >&2
	fail=$((fail + 1))
}
# check DESCRIPTION CMD...: one check; its output shown indented.
check() {
	local what=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/    /'
	if [ "$rc" -eq 0 ]; then ok "$what"; else bad "$what (exit $rc)"; fi
}

echo "--- apt-get install (Depends from the Debian archive; --no-install-recommends)"
apt-get update -q >/dev/null
# The consumer's toolchain in the same transaction (gcc, make, cmake,
# pkg-config), and man-db: systemd-analyze verify checks Documentation=man:.
apt-get install -y -q --no-install-recommends \
	"./iketcpd_${version}_"*.deb "./libiketcp0_${version}_"*.deb "./libiketcp-dev_${version}_"*.deb \
	gcc libc6-dev make cmake pkg-config man-db >apt.log 2>&1 || {
	tail -n 40 apt.log >&2
	echo "apt-get install failed" >&2
	exit 1
}
grep -E '^(Setting up|Unpacking) (iketcpd|libiketcp)' apt.log || true
check "iketcpd, libiketcp0, libiketcp-dev $version installed" \
	dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' iketcpd libiketcp0 libiketcp-dev

echo "--- iketcpd"
check "iketcpd -n accepts the shipped /etc/iketcpd/iketcpd.conf" \
	/usr/sbin/iketcpd -n -c /etc/iketcpd/iketcpd.conf
check "/etc/iketcpd/iketcpd.conf is a conffile" \
	bash -c "dpkg-query -W -f='\${Conffiles}\n' iketcpd | grep -w /etc/iketcpd/iketcpd.conf"
check "iketcp --version says $version" bash -c "iketcp --version | tee /dev/stderr | grep -qx 'iketcp $version'"
check "the account iketcpd exists (sysusers.d, postinst)" \
	bash -c 'getent passwd iketcpd && getent group iketcpd && [ "$(id -u iketcpd)" -lt 1000 ]'
check "the unit is installed" test -f /lib/systemd/system/iketcpd.service
check "the unit is not enabled" \
	bash -c '! ls /etc/systemd/system/*.wants/iketcpd.service 2>/dev/null'
if command -v systemd-analyze >/dev/null; then
	# No systemd runs in this root: verify the file alone (the unit's
	# User= exists, ExecStart= is executable, the syntax is 252's).
	check "systemd-analyze verify iketcpd.service: no complaint" \
		bash -c 'out=$(systemd-analyze verify /lib/systemd/system/iketcpd.service 2>&1); echo "$out"; [ -z "$out" ]'
else
	bad "systemd-analyze missing (systemd should have come with iketcpd's Depends)"
fi
check "man pages iketcpd(8), iketcp(1)" \
	test -f /usr/share/man/man8/iketcpd.8.gz -a -f /usr/share/man/man1/iketcp.1.gz
check "the Wireshark dissector" test -f /usr/share/iketcpd/wireshark/iketcp.lua

echo "--- a program built against libiketcp-dev"
rm -rf consumer && mkdir consumer
check "pkg-config iketcp: compile, link against libiketcp.so.0, run" bash -c '
	set -e
	pkg-config --modversion iketcp
	gcc -Wall -Wextra -Werror consumer.c $(pkg-config --cflags --libs iketcp) -o consumer/pc
	ldd consumer/pc | grep -E "libiketcp[.]so[.]0 => /(usr/)?lib/"
	consumer/pc'
check "find_package(iketcp): iketcp::iketcp and iketcp::iketcp_static build and run" bash -c '
	set -e
	cmake -S . -B consumer/cm -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >consumer/cm.log 2>&1 &&
		cmake --build consumer/cm >>consumer/cm.log 2>&1 || { cat consumer/cm.log; exit 1; }
	grep -F iketcp_DIR: consumer/cm/CMakeCache.txt
	ldd consumer/cm/consumer_shared | grep -E "libiketcp[.]so[.]0 => /(usr/)?lib/"
	if ldd consumer/cm/consumer_static | grep -F libiketcp; then
		echo "consumer_static needs the shared library"
		exit 1
	fi
	consumer/cm/consumer_shared
	consumer/cm/consumer_static'

echo "--- remove and purge"
check "apt-get purge iketcpd libiketcp-dev libiketcp0" \
	bash -c 'apt-get purge -y -q iketcpd libiketcp-dev libiketcp0 >purge.log 2>&1 || { tail -n 20 purge.log; exit 1; }'
check "purge removed /etc/iketcpd and the unit" \
	bash -c '! [ -e /etc/iketcpd/iketcpd.conf ] && ! [ -e /lib/systemd/system/iketcpd.service ]'

echo "package-check: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
