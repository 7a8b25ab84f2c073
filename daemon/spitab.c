#include "spitab.h"

#include <stdlib.h>
#include <string.h>

int
spitab_init(struct spitab *t, const struct siphash_key *hkey, unsigned buckets)
{
	t->hkey = hkey;
	t->mask = buckets - 1;
	t->b = calloc(buckets, sizeof(*t->b));
	return t->b ? 0 : -1;
}

void
spitab_free(struct spitab *t)
{
	free(t->b);
	t->b = NULL;
}

static unsigned
spi_hash(const struct spitab *t, uint64_t key, uint8_t type)
{
	uint8_t b[9];
	memcpy(b, &key, 8);
	b[8] = type;
	return (unsigned)siphash24(t->hkey, b, sizeof(b)) & t->mask;
}

struct spi_ent *
spitab_find(const struct spitab *t, uint8_t type, uint64_t key)
{
	for (struct spi_ent *e = t->b[spi_hash(t, key, type)]; e; e = e->next)
		if (e->key == key && e->type == type)
			return e;
	return NULL;
}

void
spitab_unlink(struct spitab *t, struct spi_ent *x)
{
	if (x->type == SPI_FREE)
		return;
	for (struct spi_ent **pp = &t->b[spi_hash(t, x->key, x->type)]; *pp; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	}
	x->type = SPI_FREE;
	x->next = NULL;
}

void
spitab_set(struct spitab *t, struct spi_ent *e, uint8_t type, uint64_t key, void *owner)
{
	spitab_unlink(t, e);
	e->key = key;
	e->type = type;
	e->owner = owner;
	unsigned h = spi_hash(t, key, type);
	e->next = t->b[h];
	t->b[h] = e;
}
