/*
 * SPI tables: IKE SPIs and ESP SPIs to their owner (a server session, a
 * client flow). A peer chooses the keys, so buckets are picked by SipHash
 * under a random key: no one can aim many SPIs at one bucket. Entries are
 * embedded in their owner (a fixed number per owner, reused oldest first),
 * so the table never allocates.
 */
#ifndef IKETCPD_SPITAB_H
#define IKETCPD_SPITAB_H

#include <stdint.h>

#include "siphash.h"

enum { SPI_FREE = 0, SPI_IKE = 1, SPI_ESP = 2 };

struct spi_ent {
	uint64_t key; /* IKE: the initiator's SPI; ESP: the SPI */
	uint8_t type; /* SPI_FREE: not in the table */
	void *owner;
	struct spi_ent *next;
};

struct spitab {
	const struct siphash_key *hkey;
	unsigned mask;
	struct spi_ent **b;
};

/* buckets: a power of two. Returns 0, or -1 when out of memory. */
int spitab_init(struct spitab *t, const struct siphash_key *hkey, unsigned buckets);
void spitab_free(struct spitab *t);

struct spi_ent *spitab_find(const struct spitab *t, uint8_t type, uint64_t key);

static inline void *
spitab_owner(const struct spitab *t, uint8_t type, uint64_t key)
{
	struct spi_ent *e = spitab_find(t, type, key);
	return e ? e->owner : (void *)0;
}

/* Puts key into entry e for owner; whatever e held is dropped first. */
void spitab_set(struct spitab *t, struct spi_ent *e, uint8_t type, uint64_t key, void *owner);
/* Takes e out (a free entry is left alone). */
void spitab_unlink(struct spitab *t, struct spi_ent *e);

#endif
