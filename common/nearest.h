/*
 * "Did you mean ...?" for words typed by an operator: the iketcp commands
 * and options (tools/) and iketcpd's configuration keys (daemon/) use this
 * one implementation, so both suggest the same way. Not part of libiketcp.
 */
#ifndef IKETCP_COMMON_NEAREST_H
#define IKETCP_COMMON_NEAREST_H

#include <stddef.h>

/* Words longer than this are never close to anything. */
#define NEAREST_WORD_MAX 64

/*
 * The candidate nearest to word: a unique one that word is a prefix of (3
 * characters at least), else the one at the smallest edit distance if that
 * distance is small for the word's length. NULL entries are skipped.
 * Returns its index or -1.
 */
int nearest_word(const char *word, const char *const *cands, size_t n);

#endif
