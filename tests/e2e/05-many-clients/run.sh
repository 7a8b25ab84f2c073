#!/bin/bash
# 05-many-clients: 10 clients, each with its own initiator + iketcpd client,
# through one iketcpd server to one responder. See description.txt.
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

N=${E2E_CLIENTS:-10}

e2e_init
need_iketcpd

topo_gw
for i in $(seq "$N"); do
	topo_client "$i"
	block_udp "$(ns_of "c$i")"
done
for i in $(seq "$N"); do
	must_wait "nsx $(ns_of "c$i") ping -c1 -W1 $(gw_addr "$i")" 10 "link c$i -> gw"
done

charon_start "$NS_GW" responder
iketcpd_server "$NS_GW"
for i in $(seq "$N"); do
	ns=$(ns_of "c$i")
	iketcpd_client "$ns" "$(gw_addr "$i")" --enable-tcp yes
	charon_start "$ns" initiator remote=127.0.0.1 rport="$CLIENT_UDP_PORT" lport=4500
done

# All initiators at once.
log "initiating $N tunnels in parallel"
t0=$(now_ms)
pids=()
for i in $(seq "$N"); do
	ns=$(ns_of "c$i")
	SWAN_TIMEOUT=50 swan "$ns" --initiate --child net --timeout 45 >"$(dir_of "$ns")/initiate.out" 2>&1 &
	pids+=($!)
	track_pid $!
done
bad=""
for i in $(seq "$N"); do
	wait "${pids[$((i - 1))]}" || bad="$bad c$i"
done
[ -z "$bad" ] || fail "swanctl --initiate failed on:$bad"
for i in $(seq "$N"); do
	must_wait "sa_established $(ns_of "c$i")" 10 "c$i: SA established"
done
log "$N tunnels up in $(($(now_ms) - t0)) ms"

n=$(swan "$NS_GW" --list-sas | grep -c ESTABLISHED || true)
[ "$n" -eq "$N" ] || fail "responder has $n IKE SAs, expected $N"
n=$(swan "$NS_GW" --list-sas | grep -c INSTALLED || true)
[ "$n" -eq "$N" ] || fail "responder has $n CHILD SAs, expected $N"

# Every tunnel carries traffic (in parallel, then checked one by one).
for i in $(seq "$N"); do
	nsx "$(ns_of "c$i")" ping -n -q -c 5 -i 0.2 -W 2 -I "$(inner_addr "$i")" "$GW_INNER" \
		>"$RUN/ping-c$i.out" 2>&1 &
	pids[i - 1]=$!
	track_pid $!
done
bad=""
for i in $(seq "$N"); do
	wait "${pids[$((i - 1))]}" || true
	got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$RUN/ping-c$i.out")
	log "c$i: ping $(inner_addr "$i") -> $GW_INNER: ${got:-0}/5"
	[ "${got:-0}" -eq 5 ] || bad="$bad c$i"
done
[ -z "$bad" ] || fail "pings lost through the tunnels of:$bad"

for i in $(seq "$N"); do
	ns=$(ns_of "c$i")
	u=$(udp_count "$ns")
	[ "$u" -eq 0 ] || fail "c$i: $u UDP packets tried to cross its link"
	[ "$(tcp4500_conns "$ns")" -eq 1 ] || fail "c$i: expected 1 TCP connection to $GW_TCP_PORT"
done
n=$(nsx "$NS_GW" ss -Htn state established "( sport = :$GW_TCP_PORT )" | wc -l)
[ "$n" -eq "$N" ] || fail "iketcpd server has $n established connections, expected $N"
iketcpd_alive "$NS_GW" server || fail "iketcpd server died"
results_line "many clients: $N tunnels over TCP through one iketcpd server, all pinging"
log "PASS"
