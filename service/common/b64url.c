#include "b64url.h"

#include <stdint.h>
#include <stdlib.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Returns the 6-bit value of a base64url character, or -1 for any other byte. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t b64url_encoded_len(size_t len)
{
    size_t tail = len % 3;
    return len / 3 * 4 + (tail == 0 ? 0 : tail + 1);
}

size_t b64url_encode_to(const unsigned char *in, size_t len, char *out)
{
    size_t written = 0;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t group = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[written++] = b64url_alphabet[group >> 18 & 0x3f];
        out[written++] = b64url_alphabet[group >> 12 & 0x3f];
        out[written++] = b64url_alphabet[group >> 6 & 0x3f];
        out[written++] = b64url_alphabet[group & 0x3f];
    }

    /* One remaining byte makes two characters, two remaining bytes make three. */
    if (len - i == 1) {
        uint32_t group = (uint32_t)in[i] << 16;
        out[written++] = b64url_alphabet[group >> 18 & 0x3f];
        out[written++] = b64url_alphabet[group >> 12 & 0x3f];
    } else if (len - i == 2) {
        uint32_t group = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[written++] = b64url_alphabet[group >> 18 & 0x3f];
        out[written++] = b64url_alphabet[group >> 12 & 0x3f];
        out[written++] = b64url_alphabet[group >> 6 & 0x3f];
    }

    out[written] = '\0';
    return written;
}

char *b64url_encode(const unsigned char *in, size_t len)
{
    /* Four output characters per three input bytes must not overflow size_t. */
    if (len > (SIZE_MAX - 4) / 4 * 3)
        return NULL;

    char *out = malloc(b64url_encoded_len(len) + 1);
    if (out == NULL)
        return NULL;
    b64url_encode_to(in, len, out);
    return out;
}

/* Decodes count characters (2 to 4) of in into count - 1 bytes at out. Returns -1 when a character
 * is outside the alphabet or when the unused low bits of the last character are not zero. */
static int b64url_decode_group(const char *in, size_t count, unsigned char *out)
{
    uint32_t group = 0;

    for (size_t i = 0; i < 4; i++) {
        int value = 0;
        if (i < count) {
            value = b64url_value((unsigned char)in[i]);
            if (value < 0)
                return -1;
        }
        group = group << 6 | (uint32_t)value;
    }

    /* A partial group leaves 4 (two characters) or 2 (three characters) unused bits, which must
     * be zero so that each byte string has exactly one spelling. */
    if (count == 2 && (group & 0xffff) != 0)
        return -1;
    if (count == 3 && (group & 0xff) != 0)
        return -1;

    for (size_t i = 0; i + 1 < count; i++)
        out[i] = (unsigned char)(group >> (16 - 8 * i) & 0xff);
    return 0;
}

int b64url_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len)
{
    if (in == NULL && in_len != 0)
        return -1;
    if (in_len % 4 == 1)
        return -1;

    size_t decoded_len = in_len / 4 * 3 + (in_len % 4 == 0 ? 0 : in_len % 4 - 1);
    unsigned char *decoded = malloc(decoded_len == 0 ? 1 : decoded_len);
    if (decoded == NULL)
        return -1;

    size_t read = 0;
    size_t written = 0;
    while (read < in_len) {
        size_t count = in_len - read < 4 ? in_len - read : 4;
        if (b64url_decode_group(in + read, count, decoded + written) != 0) {
            free(decoded);
            return -1;
        }
        read += count;
        written += count - 1;
    }

    *out = decoded;
    *out_len = decoded_len;
    return 0;
}
