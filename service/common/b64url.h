/* base64url without padding (RFC 4648 section 5, as JOSE uses it). */
#ifndef KCHUB_B64URL_H
#define KCHUB_B64URL_H

#include <stddef.h>

/* Returns the encoded length of len bytes (no padding, no terminator). */
size_t b64url_encoded_len(size_t len);

/* Encodes len bytes into out, which must hold b64url_encoded_len(len) + 1 bytes. Writes a NUL
 * terminator and returns the encoded length. */
size_t b64url_encode_to(const unsigned char *in, size_t len, char *out);

/* Encodes len bytes into a new NUL-terminated string that the caller frees. NULL when out of
 * memory. */
char *b64url_encode(const unsigned char *in, size_t len);

/* Decodes strict base64url: only the URL-safe alphabet, no padding or whitespace, a length that is
 * not 1 modulo 4, and zero bits in the unused tail of the last character (one canonical spelling
 * per value). On success returns 0 and sets *out to a new buffer (caller frees; it holds at least
 * one byte even for empty input) and *out_len. Returns -1 on invalid input or out of memory. */
int b64url_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len);

#endif
