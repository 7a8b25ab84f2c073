/*
 * Target Functions: the server's routing state machine (daemon/server.c):
 * route_ike/route_esp, attach/detach, session_response, the budgets and
 * evictions, conn_close, session_destroy - driven through the real server
 * and event loop.
 *
 * The input is a script of operations on up to 8 client connections
 * (stream socketpairs handed to server_adopt(), from 4 client addresses)
 * and a real UDP backend socket: open, send a frame (IKE request or
 * response with one of 4 SPIs, ESP with one of 4 SPIs, runts, bad
 * lengths), send raw bytes, close, half-close, read what the server sent,
 * the backend answering or sending to any session address it has seen
 * (its requests repeat: R35 retransmissions; its IKE_SA_INIT answers may ask
 * for a cookie, R39; other IKE major versions), and turns of the event
 * loop. Small budgets make evictions frequent.
 *
 * Oracles: server_selfcheck() after every operation (every link two-way,
 * every count right, no closed connection referred to); ASan and UBSan
 * catch use-after-free and friends (the bug class of a connection closed
 * inside a routing decision and then recorded as a session's path).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#include "config.h"
#include "log.h"
#include "loop.h"
#include "server.h"

#define NCONN 8
#define NPEERS 8 /* backend: session addresses seen */

static const uint64_t spis[4] = {0x1111111111111111ull, 0x2222222222222222ull,
				 0x3333333333333333ull, 0};
static const uint32_t esps[4] = {0x100, 0x200, 0xc0ffee, 7};

struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned
take(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* An IKE message (28-byte header and a short body) after the non-ESP
 * marker, from script bytes. Returns its length. */
static size_t
make_ike(struct rd *r, uint8_t *b, int response)
{
	unsigned sel = take(r), mid = take(r) & 7, ex = take(r);
	size_t n = 4 + 28 + (ex & 0x30);
	memset(b, 0, n);
	put64(b + 4, spis[sel & 3]);
	put64(b + 12, (sel & 4) ? 0 : 0xabcdefull + (sel & 3));
	b[4 + 17] = 0x20;
	b[4 + 18] = (ex & 3) == 0 ? 34 : (ex & 3) == 1 ? 35 : 37;
	b[4 + 19] = (uint8_t)((response ? 0x20 : 0) | ((sel & 8) ? 0x08 : 0));
	put32(b + 4 + 20, mid);
	put32(b + 4 + 24, (uint32_t)(n - 4));
	if (ex & 0x40) /* another major version: relayed, may create a session */
		b[4 + 17] = (ex & 0x80) ? 0x30 : 0x10;
	else if ((ex & 0x80) && n >= 4 + 28 + 8) {
		/* N(COOKIE) as the only payload (R39: the server arms the
		 * connection's cookie deadline on such an IKE_SA_INIT answer) */
		b[4 + 16] = 41;
		b[4 + 28 + 2] = (uint8_t)((n - 4 - 28) >> 8);
		b[4 + 28 + 3] = (uint8_t)(n - 4 - 28);
		b[4 + 28 + 6] = 0x40;
		b[4 + 28 + 7] = 0x06;
	}
	return n;
}

static size_t
make_esp(struct rd *r, uint8_t *b)
{
	unsigned sel = take(r);
	size_t n = 8 + (sel >> 4);
	memset(b, 'e', n);
	put32(b, esps[sel & 3]);
	put32(b + 4, sel);
	return n;
}

static void
turn(struct loop *l, const struct server *srv)
{
	CHECK(loop_once(l, 0) == 0);
	CHECK(server_selfcheck(srv) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct iketcpd_server_cfg cfg;
	struct rd r = {data, size};
	int cl[NCONN], prefixed[NCONN];
	struct sockaddr_in peers[NPEERS];
	int npeers = 0;
	uint8_t b[2048];

	if (!init) {
		log_init("fuzz_server", -1, 0); /* errors only */
		signal(SIGPIPE, SIG_IGN);       /* as iketcpd does: writes to closed peers */
		init = 1;
	}
	for (int i = 0; i < NCONN; i++)
		cl[i] = -1;
	struct loop *l = loop_new();
	CHECK(l);
	int be = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	CHECK(be >= 0);
	struct sockaddr_in ba = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t bl = sizeof(ba);
	CHECK(bind(be, (struct sockaddr *)&ba, sizeof(ba)) == 0);
	CHECK(getsockname(be, (struct sockaddr *)&ba, &bl) == 0);

	iketcpd_server_defaults(&cfg, "fuzz");
	CHECK(iketcpd_parse_addr("127.0.0.1:1", 0, &cfg.listen[0]) == 0);
	((struct sockaddr_in *)&cfg.listen[0].ss)->sin_port = 0; /* any free port */
	cfg.nlisten = 1;
	memcpy(&cfg.backend.ss, &ba, sizeof(ba));
	cfg.backend.len = sizeof(ba);
	cfg.max_conns = 6;
	cfg.max_conns_per_source = 4;
	cfg.max_pending = 3;
	cfg.max_pending_per_source = 2;
	cfg.max_sessions = 4;
	cfg.max_sessions_per_source = 3;
	cfg.max_half_open = 3;
	cfg.max_half_open_per_source = 2;
	cfg.max_bad_frames = 3;
	cfg.max_frame = 1024;
	cfg.send_budget = 4096;
	cfg.ike_reserve = 65535;
	struct server *srv = server_new(l, &cfg);
	CHECK(srv);

	while (r.n) {
		unsigned op = take(&r), k = (op >> 4) % NCONN;
		switch (op & 15) {
		case 0: /* open */
			if (cl[k] < 0) {
				int sv[2];
				CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
				struct sockaddr_in pa = {.sin_family = AF_INET,
							 .sin_port = htons((uint16_t)(1000 + k))};
				pa.sin_addr.s_addr = htonl(0x7f000001u + (take(&r) & 3));
				cl[k] = sv[0];
				prefixed[k] = 0;
				if (server_adopt(srv, sv[1], (struct sockaddr *)&pa, sizeof(pa)) <
				    0) {
					close(cl[k]);
					cl[k] = -1;
				}
			}
			break;
		case 1: /* an IKE request */
		case 2: /* an IKE response */
		case 3: /* ESP */
		case 4: /* a runt or a bad length */
			if (cl[k] >= 0) {
				size_t n = 0, m;
				if (!prefixed[k] && !(take(&r) & 0x80)) {
					memcpy(b, "IKETCP", 6);
					n = 6;
					prefixed[k] = 1;
				}
				m = (op & 15) == 3   ? make_esp(&r, b + n + 2)
				    : (op & 15) == 4 ? (b[n + 2] = 0, take(&r) & 3)
						     : make_ike(&r, b + n + 2, (op & 15) == 2);
				b[n] = (uint8_t)((m + 2) >> 8);
				b[n + 1] = (uint8_t)(m + 2);
				(void)!write(cl[k], b, n + 2 + m);
			}
			break;
		case 5: /* raw bytes */
			if (cl[k] >= 0) {
				size_t n = take(&r) & 31;
				n = n < r.n ? n : r.n;
				(void)!write(cl[k], r.p, n);
				r.p += n;
				r.n -= n;
			}
			break;
		case 6: /* close */
			if (cl[k] >= 0) {
				close(cl[k]);
				cl[k] = -1;
			}
			break;
		case 7: /* half-close */
			if (cl[k] >= 0)
				shutdown(cl[k], SHUT_WR);
			break;
		case 8: /* read what the server sent */
			if (cl[k] >= 0)
				while (read(cl[k], b, sizeof(b)) > 0)
					;
			break;
		case 9: { /* the backend reads, learning session addresses */
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			unsigned next = 0;
			while (recvfrom(be, b, sizeof(b), 0, (struct sockaddr *)&from, &fl) >= 0) {
				int seen = 0;
				for (int i = 0; i < npeers; i++)
					seen |= !memcmp(&peers[i], &from, sizeof(from));
				if (!seen && npeers < NPEERS)
					peers[npeers++] = from;
				else if (!seen)
					peers[next++ % NPEERS] = from; /* the newest replace */
				fl = sizeof(from);
			}
			break;
		}
		case 10: /* the backend answers */
		case 11: /* the backend asks */
		case 12: /* the backend sends ESP, or a keepalive */
			if (npeers) {
				size_t m = (op & 15) == 12 ? make_esp(&r, b)
							   : make_ike(&r, b, (op & 15) == 10);
				if ((op & 15) == 12 && (k & 1)) {
					b[0] = 0xff;
					m = 1;
				}
				(void)!sendto(be, b, m, 0, (struct sockaddr *)&peers[k % npeers],
					      sizeof(peers[0]));
			}
			break;
		default: /* turns of the loop */
			break;
		}
		turn(l, srv);
	}
	for (int i = 0; i < 3; i++)
		turn(l, srv);
	server_free(srv);
	CHECK(loop_once(l, 0) == 0); /* deferred frees */
	loop_free(l);
	for (int i = 0; i < NCONN; i++)
		if (cl[i] >= 0)
			close(cl[i]);
	close(be);
	return 0;
}
