/*
 * Base64 (RFC 4648 §4, with padding) for lib/ only: the proxy's Basic
 * credentials and the base64 form of TLS pins. OpenSSL's EVP_EncodeBlock
 * and EVP_DecodeBlock do the work; the decoder adds the checks that
 * EVP_DecodeBlock leaves out.
 */
#ifndef IKETCP_BASE64_INTERNAL_H
#define IKETCP_BASE64_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Characters of the encoding of n bytes, without the NUL. */
#define IKETCP_B64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes the encoding of in[0..n) and a NUL to out (IKETCP_B64_LEN(n) + 1
 * bytes). Returns the length without the NUL. */
size_t iketcp__b64_encode(char *out, const uint8_t *in, size_t n);

/*
 * Decodes in[0..n) into out (cap bytes, at least 3 * n / 4). Only the
 * canonical form is accepted: a multiple of 4 characters of the RFC 4648
 * §4 alphabet, '=' only as one or two final characters, and zero bits
 * where the padding cuts the last group (so that each byte string has
 * exactly one encoding). No blanks, no line breaks. Returns the number of
 * bytes, or -1.
 */
long iketcp__b64_decode(uint8_t *out, size_t cap, const char *in, size_t n);

#endif
