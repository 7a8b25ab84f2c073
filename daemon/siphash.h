/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash for the tables
 * whose keys a peer chooses (IKE and ESP SPIs, source addresses). With a
 * key drawn at start a peer cannot compute which keys collide, so it cannot
 * turn a table into a list (the SPI flooding attack in
 * docs/architecture.md, "Trust model").
 */
#ifndef IKETCPD_SIPHASH_H
#define IKETCPD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
	uint64_t k0, k1;
};

uint64_t siphash24(const struct siphash_key *key, const void *data, size_t len);

/* A key from getrandom(); falls back to time and address bits only if the
 * kernel has no entropy call (then logged by the caller). Returns 0 or -1. */
int siphash_key_random(struct siphash_key *key);

#endif
