#include "testutil.h"
#include "tlsutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- throwaway PKI ----------------------------------------------------------- */

#define DAY (24L * 3600L)

static EVP_PKEY *
keygen(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k)
		fail_msg("EC key generation failed");
	return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext || !X509_add_ext(x, ext, -1))
		fail_msg("cannot add extension %d = %s", nid, value);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, valid [now+nb, now+na], signed by issuer (NULL: self). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *issuer_key,
	  long nb, long na, int ca, long serial)
{
	X509 *x = X509_new();
	X509_NAME *nm;

	if (!x)
		fail_msg("X509_new");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), nb);
	X509_gmtime_adj(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, key);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"iketcp TEST ONLY",
				   -1, -1, 0);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (ca) {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
		add_ext(x, issuer, NID_authority_key_identifier, "keyid");
		add_ext(x, issuer, NID_subject_alt_name, san);
	}
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
		fail_msg("X509_sign failed");
	return x;
}

static void
write_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");
	if (!f || !PEM_write_X509(f, x))
		fail_msg("cannot write %s", path);
	fclose(f);
}

static void
write_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL))
		fail_msg("cannot write %s", path);
	fclose(f);
}

static void
path_in(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, TU_PATH_MAX, "%s/%s", dir, name);
	if (n < 0 || n >= TU_PATH_MAX)
		fail_msg("path too long: %s/%s", dir, name);
}

/* A leaf signed by (issuer, ikey) written to cert/key paths. */
static void
make_leaf(const char *cert, const char *key, const char *cn, const char *san, X509 *issuer,
	  EVP_PKEY *ikey, long nb, long na, long serial)
{
	EVP_PKEY *k = keygen();
	X509 *x = make_cert(k, cn, san, issuer, ikey, nb, na, 0, serial);
	write_cert(cert, x);
	write_key(key, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

void
tu_pki_make(struct tu_pki *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s/iketcp-tls-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(p->dir))
		fail_msg("mkdtemp: %s", strerror(errno));
	path_in(p->ca, p->dir, "ca.pem");
	path_in(p->srv_cert, p->dir, "server.pem");
	path_in(p->srv_key, p->dir, "server.key");
	path_in(p->wrong_cert, p->dir, "wrong.pem");
	path_in(p->wrong_key, p->dir, "wrong.key");
	path_in(p->expired_cert, p->dir, "expired.pem");
	path_in(p->expired_key, p->dir, "expired.key");
	path_in(p->unknown_cert, p->dir, "unknown.pem");
	path_in(p->unknown_key, p->dir, "unknown.key");
	path_in(p->ip_cert, p->dir, "ip.pem");
	path_in(p->ip_key, p->dir, "ip.key");

	EVP_PKEY *cak = keygen(), *ca2k = keygen();
	X509 *ca = make_cert(cak, "iketcp test CA", NULL, NULL, NULL, -DAY, 30 * DAY, 1, 1);
	X509 *ca2 = make_cert(ca2k, "iketcp untrusted CA", NULL, NULL, NULL, -DAY, 30 * DAY, 1, 2);
	write_cert(p->ca, ca);
	make_leaf(p->srv_cert, p->srv_key, TU_SERVER_NAME, "DNS:" TU_SERVER_NAME, ca, cak, -DAY,
		  DAY, 10);
	make_leaf(p->wrong_cert, p->wrong_key, "other.test", "DNS:other.test", ca, cak, -DAY, DAY,
		  11);
	make_leaf(p->expired_cert, p->expired_key, TU_SERVER_NAME, "DNS:" TU_SERVER_NAME, ca, cak,
		  -3 * DAY, -DAY, 12);
	make_leaf(p->unknown_cert, p->unknown_key, TU_SERVER_NAME, "DNS:" TU_SERVER_NAME, ca2, ca2k,
		  -DAY, DAY, 13);
	make_leaf(p->ip_cert, p->ip_key, "127.0.0.1", "IP:127.0.0.1", ca, cak, -DAY, DAY, 14);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ca2k);
	ERR_clear_error();
}

void
tu_pki_remove(struct tu_pki *p)
{
	const char *files[] = {p->ca,          p->srv_cert,     p->srv_key,     p->wrong_cert,
			       p->wrong_key,   p->expired_cert, p->expired_key, p->unknown_cert,
			       p->unknown_key, p->ip_cert,      p->ip_key};
	for (size_t i = 0; i < TU_ARRAY_LEN(files); i++)
		if (files[i][0])
			unlink(files[i]);
	if (p->dir[0])
		rmdir(p->dir);
}

/* ---- sockets ----------------------------------------------------------------- */

static void
nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		fail_msg("fcntl: %s", strerror(errno));
}

void
tu_socketpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		fail_msg("socketpair: %s", strerror(errno));
}

void
tu_tcp_pair(int sv[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) != 0)
		fail_msg("listen on loopback: %s", strerror(errno));
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof(a)) != 0)
		fail_msg("connect: %s", strerror(errno));
	sv[1] = accept(l, NULL, NULL);
	if (sv[1] < 0)
		fail_msg("accept: %s", strerror(errno));
	close(l);
	nonblock(sv[0]);
	nonblock(sv[1]);
}

void
tu_small_buffers(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) != 0)
		fail_msg("setsockopt: %s", strerror(errno));
}

static short
poll_events(unsigned want)
{
	return (short)((want & IKETCP_WANT_READ ? POLLIN : 0) |
		       (want & IKETCP_WANT_WRITE ? POLLOUT : 0));
}

int
tu_wait(int fd, unsigned want, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = poll_events(want)};
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Waits until one of two fds is ready for what it wants; fails after 5 s. */
static void
wait_either(int fa, unsigned wa, int fb, unsigned wb)
{
	struct pollfd pfd[2] = {
		{.fd = wa ? fa : -1, .events = poll_events(wa)},
		{.fd = wb ? fb : -1, .events = poll_events(wb)},
	};
	int r;

	do
		r = poll(pfd, 2, 5000);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		fail_msg("no progress for 5 s (want %u / %u)", wa, wb);
}

void
tu_handshake_pair(struct iketcp_transport *a, struct iketcp_transport *b, int *rca, int *rcb)
{
	int ra = IKETCP_E_AGAIN, rb = IKETCP_E_AGAIN;

	for (int round = 0; round < 10000; round++) {
		if (ra == IKETCP_E_AGAIN)
			ra = iketcp_transport_handshake(a);
		if (rb == IKETCP_E_AGAIN)
			rb = iketcp_transport_handshake(b);
		if ((ra != IKETCP_E_AGAIN && rb != IKETCP_E_AGAIN) ||
		    (ra != IKETCP_E_AGAIN && ra != IKETCP_OK) ||
		    (rb != IKETCP_E_AGAIN && rb != IKETCP_OK)) {
			/* One side failed: give the other a moment to see the alert. */
			for (int k = 0; k < 50 && (ra == IKETCP_E_AGAIN || rb == IKETCP_E_AGAIN);
			     k++) {
				if (ra == IKETCP_E_AGAIN) {
					tu_wait(a->fd, iketcp_transport_want(a), 20);
					ra = iketcp_transport_handshake(a);
				}
				if (rb == IKETCP_E_AGAIN) {
					tu_wait(b->fd, iketcp_transport_want(b), 20);
					rb = iketcp_transport_handshake(b);
				}
			}
			break;
		}
		wait_either(a->fd, ra == IKETCP_E_AGAIN ? iketcp_transport_want(a) : 0, b->fd,
			    rb == IKETCP_E_AGAIN ? iketcp_transport_want(b) : 0);
	}
	*rca = ra;
	*rcb = rb;
}

void
tu_transfer(struct iketcp_transport *t, struct iketcp_transport *r, const void *p, size_t n)
{
	const uint8_t *src = p;
	uint8_t *got = tu_xmalloc(n);
	size_t sent = 0, rcvd = 0;

	while (rcvd < n || iketcp_transport_pending(t) > 0) {
		if (sent < n) {
			struct iovec iov = {.iov_base = (void *)(uintptr_t)(src + sent),
					    .iov_len = n - sent};
			long w = iketcp_transport_writev(t, &iov, 1);
			if (w < 0 && w != IKETCP_E_AGAIN)
				fail_msg("writev: %s", iketcp_errname((int)w));
			if (w > 0)
				sent += (size_t)w;
		} else if (iketcp_transport_flush(t) < IKETCP_E_AGAIN) {
			fail_msg("flush failed");
		}
		long k = iketcp_transport_read(r, got + rcvd, n - rcvd);
		if (k == 0)
			fail_msg("unexpected end of stream after %zu of %zu bytes", rcvd, n);
		if (k < 0 && k != IKETCP_E_AGAIN)
			fail_msg("read: %s", iketcp_errname((int)k));
		if (k > 0)
			rcvd += (size_t)k;
		if (k == IKETCP_E_AGAIN && (sent == n && iketcp_transport_pending(t) == 0))
			wait_either(r->fd, iketcp_transport_interest(r, 1, 0), t->fd, 0);
		else if (k == IKETCP_E_AGAIN)
			wait_either(r->fd, iketcp_transport_interest(r, 1, 0), t->fd,
				    iketcp_transport_interest(t, 0, 1));
	}
	assert_memory_equal(got, src, n);
	free(got);
}

int
tu_err_contains(const struct iketcp_transport *t, const char *needle)
{
	char buf[IKETCP_TRANSPORT_ERR_MAX];

	iketcp_transport_last_error(t, buf, sizeof(buf));
	if (strstr(buf, needle))
		return 1;
	fprintf(stderr, "error text \"%s\" does not contain \"%s\"\n", buf, needle);
	return 0;
}
