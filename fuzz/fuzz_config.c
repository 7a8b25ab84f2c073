/*
 * Target Functions: iketcpd_config_parse_buf, iketcpd_config_dump,
 * iketcpd_config_check, iketcpd_config_parse_args, iketcpd_parse_addr,
 * iketcpd_addr_str (daemon/config_*.c).
 *
 * The input is a config file. Oracles:
 *   - a failed parse leaves the configuration byte for byte as it was, and
 *     its message starts with the source name and is printable ASCII (bad
 *     values are quoted with escapes, never copied raw);
 *   - a successful parse passes iketcpd_config_check(), and its dump (read
 *     back from a memfd) parses to the very same struct and dumps to the
 *     very same text;
 *   - the same bytes split into lines are also fed to the command-line
 *     parser in both modes, under the same oracles;
 *   - each line is also an address: a parsed address formats to text that
 *     parses back to the same sockaddr.
 * Sanitizers (ASan, UBSan, LeakSanitizer) catch the rest.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create(); iketcpd_core also defines it */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#include "config.h"

#define SRC "fuzz.conf"
#define MAX_ARGS 64

/* Every byte of a message is printable ASCII, and it is NUL-terminated in err. */
static void
check_message(const char *err, size_t errlen, const char *prefix)
{
	size_t n = strnlen(err, errlen);

	CHECK(n < errlen);
	CHECK(n > 0);
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(err[i] >= 0x20 && err[i] <= 0x7e);
}

/* Dumps cfg through a memfd into a malloc'ed buffer. */
static char *
dump_mem(const struct iketcpd_cfg *cfg, size_t *len)
{
	int fd = memfd_create("iketcpd-dump", MFD_CLOEXEC);
	char *buf;
	off_t end;
	size_t got = 0;

	CHECK(fd >= 0);
	iketcpd_config_dump(cfg, fd);
	end = lseek(fd, 0, SEEK_END);
	CHECK(end > 0);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	buf = malloc((size_t)end + 1);
	CHECK(buf != NULL);
	while (got < (size_t)end) {
		ssize_t r = read(fd, buf + got, (size_t)end - got);
		CHECK(r > 0);
		got += (size_t)r;
	}
	buf[got] = '\0';
	close(fd);
	*len = got;
	return buf;
}

/* dump -> parse gives the same struct, and dumping that gives the same text. */
static void
check_roundtrip(const struct iketcpd_cfg *cfg)
{
	struct iketcpd_cfg *back = malloc(sizeof(*back));
	char err[512] = "";
	size_t len, len2;
	char *text, *text2;

	CHECK(back != NULL);
	CHECK(iketcpd_config_check(cfg, err, sizeof(err)) == 0);
	text = dump_mem(cfg, &len);
	iketcpd_config_init(back);
	if (iketcpd_config_parse_buf(back, "dump", text, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "dump does not parse: %s\n---\n%s---\n", err, text);
		abort();
	}
	CHECK(memcmp(cfg, back, sizeof(*cfg)) == 0);
	text2 = dump_mem(back, &len2);
	CHECK(len == len2 && memcmp(text, text2, len) == 0);
	free(text2);
	free(text);
	free(back);
}

/* The whole input as a file. */
static void
fuzz_file(const uint8_t *data, size_t size)
{
	struct iketcpd_cfg *cfg = malloc(sizeof(*cfg)), *snap = malloc(sizeof(*snap));
	char err[512];

	CHECK(cfg != NULL && snap != NULL);
	iketcpd_config_init(cfg);
	memcpy(snap, cfg, sizeof(*cfg));
	memset(err, 0x5a, sizeof(err));
	if (iketcpd_config_parse_buf(cfg, SRC, (const char *)data, size, err, sizeof(err)) == 0) {
		check_roundtrip(cfg);
	} else {
		check_message(err, sizeof(err), SRC);
		CHECK(memcmp(cfg, snap, sizeof(*cfg)) == 0);
	}
	free(snap);
	free(cfg);
}

/* Splits the input at '\n' into at most MAX_ARGS malloc'ed strings. */
static int
split_lines(const uint8_t *data, size_t size, char **argv)
{
	size_t off = 0;
	int argc = 0;

	while (off < size && argc < MAX_ARGS) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : size - off;

		argv[argc] = malloc(n + 1);
		CHECK(argv[argc] != NULL);
		memcpy(argv[argc], data + off, n);
		argv[argc][n] = '\0'; /* an embedded NUL just ends the argument early */
		argc++;
		off += n + 1;
	}
	return argc;
}

/* The lines as command-line arguments, in both modes. */
static void
fuzz_args(char **argv, int argc)
{
	static const char *const modes[] = {"server", "client"};
	struct iketcpd_cfg *cfg = malloc(sizeof(*cfg)), *snap = malloc(sizeof(*snap));
	char err[512];

	CHECK(cfg != NULL && snap != NULL);
	for (size_t m = 0; m < 2; m++) {
		iketcpd_config_init(cfg);
		memcpy(snap, cfg, sizeof(*cfg));
		memset(err, 0x5a, sizeof(err));
		if (iketcpd_config_parse_args(cfg, modes[m], argc, argv, err, sizeof(err)) == 0) {
			CHECK(cfg->nservers + cfg->nclients == 1);
			check_roundtrip(cfg);
		} else {
			check_message(err, sizeof(err), "command line: ");
			CHECK(memcmp(cfg, snap, sizeof(*cfg)) == 0);
		}
	}
	free(snap);
	free(cfg);
}

/* Each line as an address: format and parse back. */
static void
fuzz_addr(const char *s)
{
	struct iketcpd_addr a, b, snap;
	char buf[64];

	memset(&a, 0xa5, sizeof(a));
	snap = a;
	if (iketcpd_parse_addr(s, 4500, &a) != 0) {
		CHECK(memcmp(&a, &snap, sizeof(a)) == 0);
		return;
	}
	CHECK(a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6);
	iketcpd_addr_str(&a, buf, sizeof(buf));
	CHECK(strcmp(buf, "(none)") != 0);
	CHECK(iketcpd_parse_addr(buf, 0, &b) == 0);
	CHECK(a.len == b.len && memcmp(&a.ss, &b.ss, a.len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 1];
	int argc, i;

	fuzz_file(data, size);

	argc = split_lines(data, size, argv);
	argv[argc] = NULL;
	fuzz_args(argv, argc);
	for (i = 0; i < argc; i++) {
		fuzz_addr(argv[i]);
		free(argv[i]);
	}
	return 0;
}
