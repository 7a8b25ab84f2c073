/*
 * The value decoders and formatters of iketcpd's configuration: numbers,
 * durations, sizes and yes/no read from NUL-terminated values through the
 * bounded cursor, and the quoting of rejected values in messages.
 *
 * Numbers are read digit by digit, saturate at DEC_SAT instead of
 * overflowing, and are range-checked by the caller's limits. A decoder
 * writes its result only on success.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

/* ---- messages ---------------------------------------------------------------- */

void
cfg_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Writes s[0..n) to out as a double-quoted, printable string: `"` and `\`
 * escaped, other bytes outside 0x20..0x7e as \xHH, at most CFG_QUOTE_MAX
 * input bytes followed by "..." when there were more. Returns out.
 */
const char *
cfg_quote(char *out, size_t outlen, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;
	struct iketcp_cur c;
	uint8_t b;

	/* Worst case: 2 quotes + 4 bytes per input byte + "..." + NUL. */
	if (outlen < 2 + 4 * CFG_QUOTE_MAX + 3 + 1) {
		if (outlen)
			out[0] = '\0';
		return out;
	}
	iketcp_cur_init(&c, s, n);
	out[o++] = '"';
	for (i = 0; i < CFG_QUOTE_MAX && iketcp_cur_get_u8(&c, &b) == IKETCP_OK; i++) {
		if (b == '"' || b == '\\') {
			out[o++] = '\\';
			out[o++] = (char)b;
		} else if (b < 0x20 || b > 0x7e) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[b >> 4];
			out[o++] = hex[b & 15];
		} else {
			out[o++] = (char)b;
		}
	}
	if (iketcp_cur_left(&c) > 0) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* ---- small cursor helpers -------------------------------------------------- */

/* Returns the next byte without consuming it, or -1 at the end. */
int
cur_peek(const struct iketcp_cur *c)
{
	struct iketcp_cur t = *c;
	uint8_t b;

	if (iketcp_cur_get_u8(&t, &b) != IKETCP_OK)
		return -1;
	return b;
}

/*
 * Reads decimal digits. Returns how many were read (0: the cursor did not
 * start with a digit); *out is their value, saturated at DEC_SAT.
 */
size_t
cur_get_dec(struct iketcp_cur *c, uint64_t *out)
{
	uint64_t v = 0;
	size_t nd = 0;
	int b;
	uint8_t d;

	while ((b = cur_peek(c)) >= '0' && b <= '9') {
		if (iketcp_cur_get_u8(c, &d) != IKETCP_OK)
			break;
		v = v * 10 + (uint64_t)(d - '0');
		if (v > DEC_SAT)
			v = DEC_SAT;
		nd++;
	}
	*out = v;
	return nd;
}

/* Counts the bytes equal to ch that are left under c. */
size_t
cur_count(const struct iketcp_cur *c, uint8_t ch)
{
	struct iketcp_cur t = *c;
	size_t n = 0;
	uint8_t b;

	while (iketcp_cur_get_u8(&t, &b) == IKETCP_OK)
		n += b == ch;
	return n;
}

/* Returns how many bytes precede the first ch (all that is left if none). */
size_t
cur_span_to(const struct iketcp_cur *c, uint8_t ch)
{
	struct iketcp_cur t = *c;
	size_t n = 0;
	uint8_t b;

	while (iketcp_cur_get_u8(&t, &b) == IKETCP_OK && b != ch)
		n++;
	return n;
}

/*
 * Sets c over the string s, which must be at most max bytes long. Returns 0,
 * or -1 for a longer string (never cut silently).
 */
int
cur_over_str(struct iketcp_cur *c, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max)
		return -1;
	iketcp_cur_init(c, s, n);
	return 0;
}

/* ---- value decoders (pure: 0 or -1, nothing written on failure) ------------- */

/* Parses a whole string of digits into [min, max]. */
enum num_rc
dec_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	struct iketcp_cur c;
	uint64_t v;

	if (cur_over_str(&c, s, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    iketcp_cur_left(&c) != 0)
		return NUM_SYNTAX;
	if (v < min || v > max)
		return NUM_RANGE;
	*out = v;
	return NUM_OK;
}

/* Parses the port digits left under c: 1..65535, nothing after them. */
int
cur_get_port(struct iketcp_cur *c, uint16_t *port)
{
	uint64_t v;

	if (cur_get_dec(c, &v) == 0 || iketcp_cur_left(c) != 0 || v < 1 || v > PORT_MAX)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Reads the unit suffix (the rest of c, at most 2 bytes) into a string. */
int
cur_get_suffix(struct iketcp_cur *c, char suf[3])
{
	size_t n = iketcp_cur_left(c);

	if (n > 2 || iketcp_cur_get_bytes(c, suf, n) != IKETCP_OK)
		return -1;
	suf[n] = '\0';
	return 0;
}

/*
 * Duration: digits with an optional unit, "ms", "s", "m" or "h"; a bare
 * number is seconds. The result is in milliseconds, min..max (at most
 * DUR_MAX).
 */
enum num_rc
dec_duration(const char *s, uint32_t min, uint32_t max, uint32_t *ms)
{
	struct iketcp_cur c;
	uint64_t v, unit;
	char suf[3];

	if (cur_over_str(&c, s, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    cur_get_suffix(&c, suf) < 0)
		return NUM_SYNTAX;
	if (strcmp(suf, "ms") == 0)
		unit = 1;
	else if (strcmp(suf, "s") == 0 || suf[0] == '\0')
		unit = MS_PER_S;
	else if (strcmp(suf, "m") == 0)
		unit = MS_PER_M;
	else if (strcmp(suf, "h") == 0)
		unit = MS_PER_H;
	else
		return NUM_SYNTAX;
	v *= unit; /* no overflow: v <= DEC_SAT */
	if (v < min || v > max || v > DUR_MAX)
		return NUM_RANGE;
	*ms = (uint32_t)v;
	return NUM_OK;
}

/* Size in bytes: digits with an optional k/K (1024) or m/M (1024 * 1024). */
enum num_rc
dec_size(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	struct iketcp_cur c;
	uint64_t v, unit;
	char suf[3];

	if (cur_over_str(&c, s, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    cur_get_suffix(&c, suf) < 0)
		return NUM_SYNTAX;
	if (suf[0] == '\0')
		unit = 1;
	else if (strcmp(suf, "k") == 0 || strcmp(suf, "K") == 0)
		unit = KIB;
	else if (strcmp(suf, "m") == 0 || strcmp(suf, "M") == 0)
		unit = MIB;
	else
		return NUM_SYNTAX;
	v *= unit; /* no overflow: v <= DEC_SAT */
	if (v < min || v > max)
		return NUM_RANGE;
	*out = (uint32_t)v;
	return NUM_OK;
}

/* A 32-bit number, decimal or 0x-prefixed hex (firewall marks are
 * written both ways: ip rule, nft and strongSwan's fwmark show hex).
 * Returns NUM_OK with *out, NUM_SYNTAX, or NUM_RANGE above 0xffffffff. */
static enum num_rc
cur_get_u32num(struct iketcp_cur *c, uint32_t *out)
{
	uint64_t v = 0;
	size_t nd = 0;
	int b;
	uint8_t d;

	if (cur_peek(c) == '0') {
		struct iketcp_cur t = *c;
		uint8_t z, x;
		if (iketcp_cur_get_u8(&t, &z) == IKETCP_OK &&
		    iketcp_cur_get_u8(&t, &x) == IKETCP_OK && (x == 'x' || x == 'X')) {
			*c = t;
			while ((b = cur_peek(c)) >= 0 &&
			       ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') ||
				(b >= 'A' && b <= 'F'))) {
				if (iketcp_cur_get_u8(c, &d) != IKETCP_OK)
					break;
				v = v * 16 + (uint64_t)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
				if (v > DEC_SAT)
					v = DEC_SAT;
				nd++;
			}
			if (nd == 0)
				return NUM_SYNTAX;
			goto done;
		}
	}
	if (cur_get_dec(c, &v) == 0)
		return NUM_SYNTAX;
done:
	if (v > 0xffffffffull)
		return NUM_RANGE;
	*out = (uint32_t)v;
	return NUM_OK;
}

/*
 * Firewall mark "VALUE" or "VALUE/MASK" (each decimal or 0x hex). VALUE may
 * not set bits outside MASK, and may not be 0 (that is no mark). Without
 * /MASK the mask is 0xffffffff.
 */
enum num_rc
dec_mark(const char *s, uint32_t *value, uint32_t *mask)
{
	struct iketcp_cur c;
	uint32_t v, m = 0xffffffffu;
	uint8_t slash;
	enum num_rc rc;

	if (cur_over_str(&c, s, CFG_LINE_MAX) < 0)
		return NUM_SYNTAX;
	if ((rc = cur_get_u32num(&c, &v)) != NUM_OK)
		return rc;
	if (iketcp_cur_left(&c) != 0) {
		if (iketcp_cur_get_u8(&c, &slash) != IKETCP_OK || slash != '/' ||
		    (rc = cur_get_u32num(&c, &m)) != NUM_OK)
			return rc == NUM_RANGE ? NUM_RANGE : NUM_SYNTAX;
		if (iketcp_cur_left(&c) != 0)
			return NUM_SYNTAX;
	}
	if (v == 0 || m == 0 || (v & ~m) != 0)
		return NUM_RANGE;
	*value = v;
	*mask = m;
	return NUM_OK;
}

/* yes/no/true/false/on/off, any case. Returns 1, 0, or -1. */
int
dec_bool(const char *s)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcasecmp(s, "on"))
		return 1;
	if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcasecmp(s, "off"))
		return 0;
	return -1;
}

/* Formats a duration in the largest unit that divides it exactly. */
const char *
fmt_duration(char *buf, size_t len, uint32_t ms)
{
	if (ms != 0 && ms % MS_PER_H == 0)
		snprintf(buf, len, "%uh", ms / MS_PER_H);
	else if (ms != 0 && ms % MS_PER_M == 0)
		snprintf(buf, len, "%um", ms / MS_PER_M);
	else if (ms != 0 && ms % MS_PER_S == 0)
		snprintf(buf, len, "%us", ms / MS_PER_S);
	else
		snprintf(buf, len, "%ums", ms);
	return buf;
}

/* Formats a size with the largest suffix that divides it exactly. */
const char *
fmt_size(char *buf, size_t len, uint32_t v)
{
	if (v != 0 && v % MIB == 0)
		snprintf(buf, len, "%um", v / MIB);
	else if (v != 0 && v % KIB == 0)
		snprintf(buf, len, "%uk", v / KIB);
	else
		snprintf(buf, len, "%u", v);
	return buf;
}

/* Section names: 1..31 bytes of letters, digits, '.', '_' and '-'. */
int
valid_name(const char *s)
{
	size_t n = strnlen(s, IKETCPD_NAME_MAX), i;

	if (n == 0 || n >= IKETCPD_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

/* Why s cannot be an account name or number for user/group, or NULL.
 * Stricter than useradd: what cannot be mistaken for an option or a path. */
const char *
account_problem(const char *s)
{
	size_t n = strnlen(s, IKETCPD_USER_MAX);

	if (n >= IKETCPD_USER_MAX)
		return "is too long (at most 32 bytes)";
	if (n == 0 || s[0] == '-')
		return "is not a name or number";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return "is not a name or number (letters, digits, '_', '.', '-')";
	}
	return NULL;
}
