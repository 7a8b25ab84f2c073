#!/usr/bin/env bash
# UDP-over-TCP relay pair benchmark on loopback (not a test).
#
# For every datagram size and every load it runs, one after the other,
#   direct     udpload generator -> udpload sink (plain UDP, no relay)
#   iketcpd    generator -> iketcpd client (UDP in, TCP out)
#              -> iketcpd server (TCP in, UDP out) -> sink
#   udptunnel  generator -> udptunnel -c -> TCP -> udptunnel -s -> sink
# each for D seconds with fresh relay processes, then searches, per size and
# path, the highest fixed rate delivered with < 1 % loss, and prints markdown
# tables with the ratios iketcpd/udptunnel and iketcpd/direct. The load and
# the measuring are bench/udpload.c (built next to iketcpd); method and
# results: docs/performance.md, "Relay pair on loopback". A full run takes
# about 10 minutes.
#
# usage: bench/relay-bench.sh [options]
#   -d S          seconds per run (default 5)
#   -b DIR        build directory holding udpload and iketcpd (default build-bench)
#   -o DIR        where logs and results go (default: a new /tmp/relay-bench.XXXXXX)
#   --sizes "..."     datagram sizes (default "64 512 1400")
#   --loads "..."     0 = flat out, else datagrams/s (default "0 20000 100000");
#                     xF (e.g. x2) = F times what the pair carries: the
#                     flat-out delivered rate of iketcpd-base (with --base),
#                     else of iketcpd, measured once first (phase "cap",
#                     -d seconds, no IKE probes) at each size
#   --ike-rate N      udpload also sends N IKE probes/s (IKE-shaped, not
#                     echoed, counted apart) from the load's socket during
#                     every grid run; adds the table "IKE under ESP load"
#                     (IKE p50/p99/loss beside ESP delivered/loss per run)
#   --ike-size N      IKE probe bytes (default 100)
#   --sink-ike-lane 0|1  the sink reads IKE probes from a socket of its own
#                     (default 1: IKE figures without the sink's own ESP queue)
#   --rounds N        repeat the grid N times (default 1), paths alternating
#                     in each round: a side-by-side comparison with N samples
#   --paths "..."     any of direct iketcpd udptunnel iketcpd-tls iketcpd-null
#                     (default: direct iketcpd udptunnel); iketcpd-tls runs the
#                     pair over TLS (--listen-tls / --tls yes, ECDSA P-256
#                     certificate made by this script, TLS 1.3 AES-GCM),
#                     iketcpd-null over TLS 1.2 with the NULL cipher (R72)
#   --search-sizes "..."  sizes for the < 1 % loss rate search (default: all;
#                         "" = no search)
#   --search-steps N  runs per search (default 7)
#   --search-d S      seconds per search run (default 3)
#   --no-pin          do not pin processes to CPUs
#   --layout pair|hosts  how to pin (default pair, see below)
#   --no-gen-gso      generator sends with sendmmsg only (no UDP GSO); its
#                     core then caps what it can offer at about 130k/s
#   --iketcpd-v       run iketcpd with -v (logs in the output directory)
#   --base FILE       an iketcpd binary to compare with (e.g. built from an
#                     older commit in a git worktree): path "iketcpd-base",
#                     the same pair and flags as "iketcpd"
#   --variant NAME=FILE  another iketcpd binary (e.g. built with other -D
#                     settings): path "iketcpd@NAME", run like "iketcpd";
#                     may be given several times
#
# Pinning (2 CPUs): both relay processes on CPU 0, the load process
# (generator and sink threads) on CPU 1. The relay pair of either kind gets
# one core; the direct path leaves CPU 0 idle. Without two CPUs: no pinning.
# That is the capacity layout (pair). --layout hosts models two hosts for
# latency: generator + client relay on CPU 0, server relay + sink on CPU 1,
# so only the TCP hop crosses cores (the direct path crosses once too).
#
# Every process this script starts is recorded by PID and stopped on exit
# (SIGTERM, then SIGKILL after 3 s).
set -u

DUR=5
BUILD=build-bench
OUT=
SIZES="64 512 1400"
LOADS="0 20000 100000"
PATHS="direct iketcpd udptunnel"
SEARCH_SIZES="64 512 1400"
SEARCH_STEPS=7
SEARCH_D=3
PIN=1
LAYOUT=pair
GEN_GSO=1
IKETCPD_V=
BASE_BIN=
LOSS_LIMIT=1.0
IKE_RATE=0
IKE_SIZE=100
SINK_LANE=1
ROUNDS=1
declare -A VARIANT=()

die() {
	echo "relay-bench: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	-d) DUR=$2; shift ;;
	-b) BUILD=$2; shift ;;
	-o) OUT=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	--loads) LOADS=$2; shift ;;
	--paths) PATHS=$2; shift ;;
	--search-sizes) SEARCH_SIZES=$2; shift ;;
	--search-steps) SEARCH_STEPS=$2; shift ;;
	--search-d) SEARCH_D=$2; shift ;;
	--no-pin) PIN=0 ;;
	--layout)
		LAYOUT=$2
		shift
		;;
	--no-gen-gso) GEN_GSO=0 ;;
	--iketcpd-v) IKETCPD_V=-v ;;
	--base) BASE_BIN=$2; shift ;;
	--ike-rate) IKE_RATE=$2; shift ;;
	--ike-size) IKE_SIZE=$2; shift ;;
	--sink-ike-lane) SINK_LANE=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--variant) VARIANT[${2%%=*}]=${2#*=}; shift ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (try -h)" ;;
	esac
	shift
done

cd "$(dirname "$0")/.." || die "cannot cd to the source tree"
UDPLOAD=$BUILD/udpload
IKETCPD=$BUILD/iketcpd
# run as root without user: allowed here (allow-root)
export IKETCPD_ALLOW_ROOT=1
[ -x "$UDPLOAD" ] || die "$UDPLOAD missing: cmake --build $BUILD --target udpload"
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d /tmp/relay-bench.XXXXXX) || die "mktemp"
else
	mkdir -p "$OUT" || die "cannot create $OUT"
fi
RESULTS=$OUT/results.txt
: >"$RESULTS"

HAVE_IKETCPD=1
HAVE_UDPTUNNEL=1
[ -x "$IKETCPD" ] || HAVE_IKETCPD=0
command -v udptunnel >/dev/null 2>&1 || HAVE_UDPTUNNEL=0

RELAY_CPU=
LOAD_CPU=
PIN_RELAY=()
PIN_LOAD=()
PIN_SERVER=()
PIN_CLIENT=()
LOAD_PIN_ARGS=()
case $LAYOUT in pair | hosts) ;; *) die "--layout: pair or hosts" ;; esac
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	if [ "$LAYOUT" = pair ]; then
		RELAY_CPU=0
		LOAD_CPU=1
		# taskset execs the command: $! stays the relay's own PID
		PIN_RELAY=(taskset -c "$RELAY_CPU")
		PIN_LOAD=(taskset -c "$LOAD_CPU")
		PIN_SERVER=("${PIN_RELAY[@]}")
		PIN_CLIENT=("${PIN_RELAY[@]}")
	else
		# Two hosts on two cores: CPU 0 is the initiator's host (the
		# generator, i.e. its IKE daemon, and the client relay), CPU 1
		# the responder's (the server relay and the sink, its backend).
		# Only the TCP hop crosses between cores, as the wire would.
		PIN_CLIENT=(taskset -c 0)
		PIN_SERVER=(taskset -c 1)
		LOAD_PIN_ARGS=(--gen-cpu 0 --sink-cpu 1)
	fi
fi

# ---- process bookkeeping -----------------------------------------------------
PIDS=()
stop_pid() { # SIGTERM, wait at most 3 s, then SIGKILL; reaps; echoes the status
	local pid=$1
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	echo $?
}
forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 30); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	PIDS=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# waitfor TIMEOUT_TENTHS CMD...: polls CMD until it succeeds
waitfor() {
	local n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
alive() { # a zombie is not alive (kill -0 succeeds on it)
	local st
	st=$(awk '{ print $3 }' /proc/"$1"/stat 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}
tcp_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
tcp_established() { [ -n "$(ss -Htn state established "sport = :$1" 2>/dev/null)" ]; }
udp_bound() { [ -n "$(ss -Huan "sport = :$1" 2>/dev/null)" ]; }

PORT=$((20000 + RANDOM % 30000))
RUN=0
next_ports() { # three fresh ports per run: no stragglers from the previous one
	PORT=$((PORT + 3))
	[ $PORT -gt 60000 ] && PORT=20000
	TP=$PORT
	CP=$((PORT + 1))
	SP=$((PORT + 2))
}

# ---- one run -------------------------------------------------------------------
# run_one PHASE PATH SIZE RATE SECONDS [LOAD-NAME]: appends one RESULT line to
# $RESULTS and leaves it in $LINE (not run in a subshell: PIDs and counters
# stay here).
run_one() {
	local phase=$1 path=$2 size=$3 rate=$4 secs=$5
	local spid='' cpid='' tag load line rc p
	RUN=$((RUN + 1))
	next_ports
	load=$([ "$rate" = 0 ] && echo flat || echo "$rate")
	[ -n "${6:-}" ] && load=$6
	tag=$OUT/$(printf '%03d' $RUN)-$phase-$path-$size-$load
	local args=(--size "$size" --rate "$rate" --duration "$secs" --label "$path" --gso "$GEN_GSO")
	[ "$phase" = grid ] && [ "$IKE_RATE" != 0 ] &&
		args+=(--ike-rate "$IKE_RATE" --ike-size "$IKE_SIZE" --sink-ike-lane "$SINK_LANE")
	case $path in
	direct)
		args+=(--to "127.0.0.1:$SP" --listen "127.0.0.1:$SP")
		;;
	iketcpd | iketcpd-base | iketcpd@*)
		local bin=$IKETCPD
		[ "$path" = iketcpd-base ] && bin=$BASE_BIN
		[ "${path#iketcpd@}" != "$path" ] && bin=${VARIANT[${path#iketcpd@}]}
		"${PIN_SERVER[@]}" "$bin" server --listen 127.0.0.1:$TP \
			--backend 127.0.0.1:$SP -f $IKETCPD_V >"$tag.server.log" 2>&1 &
		spid=$!
		PIDS+=("$spid")
		"${PIN_CLIENT[@]}" "$bin" client --udp 127.0.0.1:$CP \
			--peer 127.0.0.1:$TP --enable-tcp yes -f $IKETCPD_V >"$tag.client.log" 2>&1 &
		cpid=$!
		PIDS+=("$cpid")
		waitfor 50 tcp_listening $TP && waitfor 50 udp_bound $CP ||
			echo "relay-bench: iketcpd did not come up (see $tag.*.log)" >&2
		args+=(--to "127.0.0.1:$CP" --listen "127.0.0.1:$SP" --pids "$spid,$cpid")
		;;
	iketcpd-tls | iketcpd-null)
		local null=()
		[ "$path" = iketcpd-null ] && null=(--tls-null-cipher yes)
		"${PIN_SERVER[@]}" "$IKETCPD" server --listen-tls 127.0.0.1:$TP \
			--tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server.key" "${null[@]}" \
			--backend 127.0.0.1:$SP -f $IKETCPD_V >"$tag.server.log" 2>&1 &
		spid=$!
		PIDS+=("$spid")
		"${PIN_CLIENT[@]}" "$IKETCPD" client --udp 127.0.0.1:$CP --peer 127.0.0.1:$TP \
			--enable-tcp yes --tls yes --tls-ca-file "$CERTS/ca.pem" "${null[@]}" \
			-f $IKETCPD_V >"$tag.client.log" 2>&1 &
		cpid=$!
		PIDS+=("$cpid")
		waitfor 50 tcp_listening $TP && waitfor 50 udp_bound $CP ||
			echo "relay-bench: iketcpd ($path) did not come up (see $tag.*.log)" >&2
		args+=(--to "127.0.0.1:$CP" --listen "127.0.0.1:$SP" --pids "$spid,$cpid")
		;;
	udptunnel)
		# udptunnel binds UDP-PORT on 0.0.0.0 (SO_REUSEADDR/PORT) and sends
		# what comes out of the tunnel to UDP-ADDR/UDP-PORT from another
		# socket. With UDP-ADDR 127.0.0.2 the sink (server side) and the
		# generator (client side) bind 127.0.0.2:PORT themselves, the more
		# specific binding wins, and nothing loops back into udptunnel.
		"${PIN_SERVER[@]}" udptunnel -s $TP 127.0.0.2/$SP >"$tag.server.log" 2>&1 &
		spid=$!
		PIDS+=("$spid")
		waitfor 50 tcp_listening $TP ||
			echo "relay-bench: udptunnel -s did not listen" >&2
		"${PIN_CLIENT[@]}" udptunnel -c 127.0.0.1/$TP 127.0.0.2/$CP >"$tag.client.log" 2>&1 &
		cpid=$!
		PIDS+=("$cpid")
		waitfor 50 tcp_established $TP && waitfor 50 udp_bound $CP ||
			echo "relay-bench: udptunnel pair did not connect" >&2
		args+=(--to "127.0.0.1:$CP" --bind "127.0.0.2:$CP" --listen "127.0.0.2:$SP"
			--reply-to "127.0.0.1:$SP" --pids "$spid,$cpid")
		;;
	esac
	"${PIN_LOAD[@]}" timeout -k 2 $((${secs%.*} + 20)) "$UDPLOAD" "${args[@]}" "${LOAD_PIN_ARGS[@]}" \
		>"$tag.load.out" 2>"$tag.load.log" &
	local lpid=$!
	PIDS+=("$lpid")
	wait "$lpid"
	rc=$?
	forget_pid "$lpid"
	line=$(grep -m1 '^RESULT ' "$tag.load.out")
	[ -n "$line" ] || line="RESULT label=$path size=$size rate=$rate error=udpload-exit-$rc"
	local extra=""
	for p in $spid $cpid; do
		if ! alive "$p"; then
			extra+=" relay_died=$p"
		fi
	done
	local st
	# client first: the server then sees a clean EOF, not a reset
	if [ -n "$cpid" ]; then
		st=$(stop_pid "$cpid")
		forget_pid "$cpid"
		bad_status "$st" && extra+=" client_status=$st"
	fi
	if [ -n "$spid" ]; then
		st=$(stop_pid "$spid")
		forget_pid "$spid"
		bad_status "$st" && extra+=" server_status=$st"
	fi
	line="RESULT phase=$phase path=$path load=$load run=$RUN ${line#RESULT }$extra"
	echo "$line" >>"$RESULTS"
	LINE=$line
	case $line in
	*error=* | *relay_died=* | *_status=*)
		echo "relay-bench: run $RUN ($path $size $load) failed; logs: $tag.*" >&2
		;;
	esac
}

# A relay that died of a signal other than our SIGTERM. SIGPIPE (141) is
# how udptunnel -s ends when its client went away first; iketcpd ignores
# SIGPIPE, so for it 141 cannot happen.
bad_status() {
	[ "$1" -ge 128 ] 2>/dev/null && [ "$1" != 143 ] && [ "$1" != 141 ]
}

field() { # field KEY LINE
	local k=$1
	shift
	echo "$*" | tr ' ' '\n' | sed -n "s/^$k=//p" | head -1
}

path_ok() {
	case $1 in
	iketcpd | iketcpd-tls | iketcpd-null) [ $HAVE_IKETCPD = 1 ] ;;
	iketcpd-base) [ -n "$BASE_BIN" ] && [ -x "$BASE_BIN" ] ;;
	iketcpd@*) [ -x "${VARIANT[${1#iketcpd@}]:-}" ] ;;
	udptunnel) [ $HAVE_UDPTUNNEL = 1 ] ;;
	*) true ;;
	esac
}

# ---- machine notes -------------------------------------------------------------
{
	echo "relay-bench $(date -u +%Y-%m-%dT%H:%M:%SZ), output in $OUT"
	echo "machine: $(nproc) CPU ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), kernel $(uname -r)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	if [ "$LAYOUT" = hosts ] && [ ${#PIN_SERVER[@]} -gt 0 ]; then
		echo "pinning (layout hosts): generator + client relay on CPU 0, server relay + sink on CPU 1"
	else
		echo "pinning: relays on CPU ${RELAY_CPU:-any}, load process on CPU ${LOAD_CPU:-any}"
	fi
	echo "generator UDP GSO: $([ "$GEN_GSO" = 1 ] && echo on || echo off)"
	echo "iketcpd: $([ $HAVE_IKETCPD = 1 ] && echo "$IKETCPD" || echo "NOT BUILT ($IKETCPD missing): path skipped")"
	echo "udptunnel: $(command -v udptunnel || echo "not installed: path skipped") $(dpkg-query -W -f '${Version}' udptunnel 2>/dev/null)"
	echo "busiest other processes:"
	ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -4 | sed 's/^/  /'
} | tee "$OUT/machine.txt" >&2

# ---- certificates for the TLS paths ---------------------------------------------
CERTS=$OUT/certs
case " $PATHS " in
*" iketcpd-tls "* | *" iketcpd-null "*)
	mkdir -p "$CERTS"
	(
		cd "$CERTS" || exit 1
		ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
		openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 \
			-subj "/CN=relay-bench CA" 2>/dev/null &&
			openssl req -new "${ec[@]}" -keyout server.key -out server.csr \
				-subj "/CN=127.0.0.1" 2>/dev/null &&
			printf 'subjectAltName=IP:127.0.0.1\n' >ext.cnf &&
			openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-days 2 -extfile ext.cnf -out server.pem 2>/dev/null
	) || die "cannot make the TLS certificates (openssl)"
	;;
esac

# ---- grid: every size x load x path ------------------------------------------------
CAP_PATH=iketcpd
[ -n "$BASE_BIN" ] && CAP_PATH=iketcpd-base
for size in $SIZES; do
	cap=
	for rate in $LOADS; do
		name=
		case $rate in
		x*)
			if [ -z "$cap" ]; then
				run_one cap "$CAP_PATH" "$size" 0 "$DUR"
				cap=$(field dps "$LINE")
				echo "relay-bench: $CAP_PATH carries $cap/s at $size B (flat out)" >&2
				[ -n "$cap" ] || die "no capacity figure from $CAP_PATH"
			fi
			name=$rate
			rate=$(awk -v c="$cap" -v f="${rate#x}" 'BEGIN { printf "%d", c * f }')
			;;
		esac
		for round in $(seq "$ROUNDS"); do
			for path in $PATHS; do
				path_ok "$path" || continue
				run_one grid "$path" "$size" "$rate" "$DUR" "$name"
				echo "$LINE" | cut -c1-220 >&2
			done
		done
	done
done

# ---- search: highest fixed rate with < 1 % loss ----------------------------------
# Starts at 0.8 x the flat-out delivered rate F of that path and size; while
# steps pass it goes up by 1.25 x (a relay may sustain more than it delivers
# when flooded, because dropping costs it CPU too); after the first failure it
# bisects between the highest pass and the lowest failure. A step passes
# when loss < 1 %, the path kept up (delivered/s >= 97 % of sent/s, i.e. no
# queue growing in deep buffers without loss) and the generator really sent
# >= 97 % of the asked rate; a step failing only on the last condition is
# marked "gen" (the generator, not the path, was the limit).
for size in $SEARCH_SIZES; do
	for path in $PATHS; do
		path_ok "$path" || continue
		flat=$(grep " phase=grid path=$path load=flat " "$RESULTS" | grep " size=$size " | tail -1)
		if [ -z "$flat" ]; then
			run_one probe "$path" "$size" 0 "$SEARCH_D"
			flat=$LINE
		fi
		fdps=$(field dps "$flat")
		[ -n "$fdps" ] || continue
		lo=0
		hi=0
		why=
		best=
		r=$(awk -v d="$fdps" 'BEGIN { printf "%d", d * 0.8 }')
		for _ in $(seq "$SEARCH_STEPS"); do
			[ "$r" -gt 0 ] || break
			run_one search "$path" "$size" "$r" "$SEARCH_D"
			line=$LINE
			verdict=$(awk -v l="$(field loss_pct "$line")" -v s="$(field sent_pps "$line")" \
				-v d="$(field dps "$line")" -v r="$r" -v lim="$LOSS_LIMIT" 'BEGIN {
					if (l == "") print "error"
					else if (l >= lim) print "loss"
					else if (d < 0.97 * s) print "behind"
					else if (s < 0.97 * r) print "gen"
					else print "pass" }')
			echo "search $path $size: $r pps -> $verdict (loss $(field loss_pct "$line") %, sent $(field sent_pps "$line")/s)" >&2
			if [ "$verdict" = pass ]; then
				lo=$r
				best=$line
			else
				hi=$r
				why=$verdict
			fi
			if [ "$hi" = 0 ]; then
				r=$((r * 5 / 4))
			else
				r=$(((lo + hi) / 2))
			fi
		done
		if [ -n "$best" ]; then
			echo "RESULT phase=best ${best#RESULT phase=search } hi=$hi hi_reason=${why:-none}" >>"$RESULTS"
		else
			echo "RESULT phase=best path=$path size=$size error=no-rate-passed hi=$hi hi_reason=$why" >>"$RESULTS"
		fi
	done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

# ---- tables ------------------------------------------------------------------------
awk -v loss_limit="$LOSS_LIMIT" '
function kv(line, key,   n, i, a, p) {
	n = split(line, a, " ")
	for (i = 1; i <= n; i++) {
		p = index(a[i], "=")
		if (substr(a[i], 1, p - 1) == key)
			return substr(a[i], p + 1)
	}
	return ""
}
function fmt(v) { return v == "" ? "–" : v }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "–" : sprintf("**%.2f×**", a / b) }
function us(v) { return v == "" ? "–" : sprintf("%.0f", v) }
/^RESULT / {
	ph = kv($0, "phase"); p = kv($0, "path"); s = kv($0, "size"); l = kv($0, "load")
	if (ph == "grid" && kv($0, "ike_rate") != "")
		IKE[++nike] = $0
	if (ph == "grid") {
		k = s SUBSEP l SUBSEP p
		G[k] = $0
		if (!(s in seen_s)) { seen_s[s] = 1; sizes[++ns] = s }
		if (!(l in seen_l)) { seen_l[l] = 1; loads[++nl] = l }
		if (!(p in seen_p)) { seen_p[p] = 1; paths[++np] = p }
	} else if (ph == "best") {
		B[s SUBSEP p] = $0
		if (!(s in seen_bs)) { seen_bs[s] = 1; bsizes[++nbs] = s }
		if (!(p in seen_p)) { seen_p[p] = 1; paths[++np] = p }
	}
}
END {
	print "### Every run"
	print ""
	print "| size B | load | path | sent/s | delivered/s | Mbit/s | loss % | reordered | p50 µs | p99 µs | max µs | relay CPU ns/dgram | relay CPU % of a core |"
	print "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= ns; i++) for (j = 1; j <= nl; j++) for (q = 1; q <= np; q++) {
		k = sizes[i] SUBSEP loads[j] SUBSEP paths[q]
		if (!(k in G)) continue
		r = G[k]
		lname = loads[j] == "flat" ? "flat out" : loads[j] " pps"
		if (kv(r, "error") != "") {
			printf "| %s | %s | %s | %s |||||||||| \n", sizes[i], lname, paths[q], "error: " kv(r, "error")
			continue
		}
		note = kv(r, "relay_died") != "" ? " (relay died)" : ""
		rn = kv(r, "relay_ns_per_dgram"); rp = kv(r, "relay_cpu_pct")
		printf "| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sizes[i], lname, paths[q], note,
			kv(r, "sent_pps"), kv(r, "dps"), kv(r, "mbps"), kv(r, "loss_pct"), kv(r, "reordered"),
			us(kv(r, "p50_us")), us(kv(r, "p99_us")), us(kv(r, "max_us")),
			(rn < 0 ? "–" : rn), (rp < 0 ? "–" : rp)
	}
	print ""
	print "### Ratios (delivered datagrams/s, same load)"
	print ""
	print "| size B | load | iketcpd / udptunnel | iketcpd / direct | loss % direct / iketcpd / udptunnel | p99 µs direct / iketcpd / udptunnel |"
	print "|---:|---|---:|---:|---|---|"
	for (i = 1; i <= ns; i++) for (j = 1; j <= nl; j++) {
		kd = sizes[i] SUBSEP loads[j] SUBSEP "direct"
		ki = sizes[i] SUBSEP loads[j] SUBSEP "iketcpd"
		ku = sizes[i] SUBSEP loads[j] SUBSEP "udptunnel"
		lname = loads[j] == "flat" ? "flat out" : loads[j] " pps"
		printf "| %s | %s | %s | %s | %s / %s / %s | %s / %s / %s |\n", sizes[i], lname,
			ratio(kv(G[ki], "dps"), kv(G[ku], "dps")), ratio(kv(G[ki], "dps"), kv(G[kd], "dps")),
			fmt(kv(G[kd], "loss_pct")), fmt(kv(G[ki], "loss_pct")), fmt(kv(G[ku], "loss_pct")),
			us(kv(G[kd], "p99_us")), us(kv(G[ki], "p99_us")), us(kv(G[ku], "p99_us"))
	}
	if (("flat" in seen_l) && (("iketcpd-tls" in seen_p) || ("iketcpd-null" in seen_p))) {
		print ""
		print "### TLS against plain TCP (delivered datagrams/s, same load)"
		print ""
		print "| size B | load | TLS / TCP | NULL / TCP | relay CPU ns/dgram TCP / TLS / NULL | p99 µs TCP / TLS / NULL |"
		print "|---:|---|---:|---:|---|---|"
		for (i = 1; i <= ns; i++) for (j = 1; j <= nl; j++) {
			ki = sizes[i] SUBSEP loads[j] SUBSEP "iketcpd"
			kt = sizes[i] SUBSEP loads[j] SUBSEP "iketcpd-tls"
			kn = sizes[i] SUBSEP loads[j] SUBSEP "iketcpd-null"
			lname = loads[j] == "flat" ? "flat out" : loads[j] " pps"
			printf "| %s | %s | %s | %s | %s / %s / %s | %s / %s / %s |\n", sizes[i], lname,
				ratio(kv(G[kt], "dps"), kv(G[ki], "dps")), ratio(kv(G[kn], "dps"), kv(G[ki], "dps")),
				fmt(kv(G[ki], "relay_ns_per_dgram")), fmt(kv(G[kt], "relay_ns_per_dgram")),
				fmt(kv(G[kn], "relay_ns_per_dgram")),
				us(kv(G[ki], "p99_us")), us(kv(G[kt], "p99_us")), us(kv(G[kn], "p99_us"))
		}
	}
	if (nike) {
		print ""
		print "### IKE under ESP load (every run)"
		print ""
		print "| size B | load | path | ESP offered/s | ESP delivered/s | ESP loss % | ESP p99 µs | IKE p50 µs | IKE p99 µs | IKE max µs | IKE loss % | relay CPU % |"
		print "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= nike; i++) {
			r = IKE[i]
			l = kv(r, "load")
			lname = l == "flat" ? "flat out" : l ~ /^x/ ? l "× cap (" kv(r, "rate") "/s)" : l " pps"
			if (kv(r, "error") != "") {
				printf "| %s | %s | %s | error: %s ||||||||| \n", kv(r, "size"), lname, kv(r, "path"), kv(r, "error")
				continue
			}
			rp = kv(r, "relay_cpu_pct")
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", kv(r, "size"), lname,
				kv(r, "path"), kv(r, "sent_pps"), kv(r, "dps"), kv(r, "loss_pct"), us(kv(r, "p99_us")),
				us(kv(r, "ike_p50_us")), us(kv(r, "ike_p99_us")), us(kv(r, "ike_max_us")),
				kv(r, "ike_loss_pct"), (rp < 0 ? "–" : rp)
		}
	}
	if (nbs == 0) exit
	print ""
	print "### Highest fixed rate with < " loss_limit " % loss (search)"
	print ""
	print "| size B | path | rate pps | delivered/s | Mbit/s | loss % | p50 µs | p99 µs | relay CPU ns/dgram | relay CPU % | lowest failing rate |"
	print "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for (i = 1; i <= nbs; i++) for (q = 1; q <= np; q++) {
		k = bsizes[i] SUBSEP paths[q]
		if (!(k in B)) continue
		r = B[k]
		if (kv(r, "error") != "") {
			printf "| %s | %s | none passed |||||||| %s (%s) |\n", bsizes[i], paths[q], kv(r, "hi"), kv(r, "hi_reason")
			continue
		}
		rn = kv(r, "relay_ns_per_dgram"); rp = kv(r, "relay_cpu_pct")
		hr = kv(r, "hi") + 0 ? kv(r, "hi") " (" kv(r, "hi_reason") ")" : "none tried"
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", bsizes[i], paths[q],
			kv(r, "rate"), kv(r, "dps"), kv(r, "mbps"), kv(r, "loss_pct"), us(kv(r, "p50_us")),
			us(kv(r, "p99_us")), (rn < 0 ? "–" : rn), (rp < 0 ? "–" : rp), hr
	}
	print ""
	for (i = 1; i <= nbs; i++) {
		ki = bsizes[i] SUBSEP "iketcpd"; ku = bsizes[i] SUBSEP "udptunnel"; kd = bsizes[i] SUBSEP "direct"
		di = kv(B[ki], "dps"); du = kv(B[ku], "dps"); dd = kv(B[kd], "dps")
		printf "%s B at < %s %% loss: iketcpd / udptunnel = %s, iketcpd / direct = %s", bsizes[i], loss_limit,
			ratio(di, du), ratio(di, dd)
		if (bsizes[i] == 1400 && di != "" && du != "")
			printf " — goal (≥ 3× udptunnel): %s", (di / du >= 3 ? "**met**" : "**not met**")
		printf "\n"
	}
}' "$RESULTS" | tee "$OUT/results.md"
echo >&2
echo "relay-bench: raw results $RESULTS, tables $OUT/results.md, logs $OUT/" >&2
