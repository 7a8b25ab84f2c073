#include "base64_internal.h"

#include <string.h>

#include <openssl/evp.h>

size_t
iketcp__b64_encode(char *out, const uint8_t *in, size_t n)
{
	size_t done = 0, w = 0;

	/* EVP_EncodeBlock takes an int length: whole groups at a time. */
	while (n - done > 0) {
		size_t k = n - done > 3u * 1024 * 1024 ? 3u * 1024 * 1024 : n - done;
		w += (size_t)EVP_EncodeBlock((unsigned char *)out + w, in + done, (int)k);
		done += k;
	}
	out[w] = '\0';
	return w;
}

static int
b64_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

long
iketcp__b64_decode(uint8_t *out, size_t cap, const char *in, size_t n)
{
	unsigned char last[4];
	size_t pad = 0;
	int got;

	if (n % 4 != 0 || n > 4u * 1024 * 1024 || cap < n / 4 * 3)
		return -1;
	if (n == 0)
		return 0;
	/* EVP_DecodeBlock skips blanks around the input and accepts '='
	 * followed by more characters; neither belongs to the form. */
	if (in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char((unsigned char)in[i]))
			return -1;
	got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	/* it counts the bytes the padding stands for too */
	if (got < 0 || (size_t)got != n / 4 * 3)
		return -1;
	/* Canonical: the last group encodes back to the same characters
	 * (bits cut off by the padding are zero). */
	size_t len = (size_t)got - pad, tail = (len - 1) / 3 * 3;
	unsigned char enc[5];
	memcpy(last, out + tail, len - tail);
	EVP_EncodeBlock(enc, last, (int)(len - tail));
	if (memcmp(enc, in + n - 4, 4) != 0)
		return -1;
	return (long)len;
}
