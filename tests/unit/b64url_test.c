#include "b64url.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* RFC 4648 section 10 test vectors; base64url without padding spells them the same way. */
static const struct {
    const char *plain;
    const char *encoded;
} rfc4648_vectors[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

/* Returns 1 when b64url_decode rejects text (given with its length, so it may hold NUL bytes). */
static int decode_rejects(const char *text, size_t len)
{
    unsigned char *out = NULL;
    size_t out_len = 0;
    int rc = b64url_decode(text, len, &out, &out_len);
    free(out);
    return rc == -1;
}

static void test_rfc4648_vectors(void)
{
    UNIT_CASE("b64url rfc4648 vectors");
    for (size_t i = 0; i < sizeof(rfc4648_vectors) / sizeof(rfc4648_vectors[0]); i++) {
        const char *plain = rfc4648_vectors[i].plain;
        const char *encoded = rfc4648_vectors[i].encoded;

        char *text = b64url_encode((const unsigned char *)plain, strlen(plain));
        CHECK_STR(text, encoded);
        free(text);
        CHECK_INT(b64url_encoded_len(strlen(plain)), strlen(encoded));

        unsigned char *bytes = NULL;
        size_t len = 0;
        CHECK_INT(b64url_decode(encoded, strlen(encoded), &bytes, &len), 0);
        CHECK_INT(len, strlen(plain));
        CHECK(bytes != NULL);
        if (bytes != NULL)
            CHECK(memcmp(bytes, plain, len) == 0);
        free(bytes);
    }
}

static void test_url_alphabet(void)
{
    UNIT_CASE("b64url url alphabet");
    /* Standard base64 spells these bytes "++//"; base64url uses '-' and '_' instead. */
    const unsigned char bytes[] = {0xfb, 0xef, 0xff};
    char text[8];
    CHECK_INT(b64url_encode_to(bytes, sizeof(bytes), text), 4);
    CHECK_STR(text, "--__");

    unsigned char *decoded = NULL;
    size_t len = 0;
    CHECK_INT(b64url_decode("--__", 4, &decoded, &len), 0);
    CHECK_INT(len, 3);
    CHECK(decoded != NULL);
    if (decoded != NULL)
        CHECK(memcmp(decoded, bytes, 3) == 0);
    free(decoded);
}

static void test_round_trip(void)
{
    UNIT_CASE("b64url round trip");
    unsigned char bytes[256];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)(255 - i);

    for (size_t len = 0; len <= sizeof(bytes); len++) {
        char *text = b64url_encode(bytes, len);
        CHECK(text != NULL);
        if (text == NULL)
            continue;
        CHECK_INT(strlen(text), b64url_encoded_len(len));

        unsigned char *decoded = NULL;
        size_t decoded_len = 0;
        CHECK_INT(b64url_decode(text, strlen(text), &decoded, &decoded_len), 0);
        CHECK_INT(decoded_len, len);
        CHECK(decoded != NULL);
        if (decoded != NULL)
            CHECK(memcmp(decoded, bytes, len) == 0);
        free(decoded);
        free(text);
    }
}

static void test_empty_input(void)
{
    UNIT_CASE("b64url empty input");
    unsigned char *out = NULL;
    size_t out_len = 99;
    CHECK_INT(b64url_decode("", 0, &out, &out_len), 0);
    CHECK(out != NULL);
    CHECK_INT(out_len, 0);
    free(out);

    char text[1] = {'x'};
    CHECK_INT(b64url_encode_to(NULL, 0, text), 0);
    CHECK_STR(text, "");
}

static void test_rejects_padding(void)
{
    UNIT_CASE("b64url rejects padding");
    CHECK(decode_rejects("Zg==", 4));
    CHECK(decode_rejects("Zm8=", 4));
    CHECK(decode_rejects("Zg=", 3));
    CHECK(decode_rejects("====", 4));
}

static void test_rejects_whitespace(void)
{
    UNIT_CASE("b64url rejects whitespace");
    CHECK(decode_rejects("Zm9v Yg", 7));
    CHECK(decode_rejects("Zm9v\nYmFy", 9));
    CHECK(decode_rejects(" Zm9v", 5));
    CHECK(decode_rejects("Zm9v\r\n", 6));
    CHECK(decode_rejects("Zm9\tv", 5));
}

static void test_rejects_standard_alphabet(void)
{
    UNIT_CASE("b64url rejects standard alphabet");
    CHECK(decode_rejects("++//", 4));
    CHECK(decode_rejects("-+__", 4));
    CHECK(decode_rejects("--_/", 4));
    CHECK(decode_rejects("Zm9v.mFy", 8));
}

static void test_rejects_nul_byte(void)
{
    UNIT_CASE("b64url rejects nul byte");
    CHECK(decode_rejects("Zm\0v", 4));
}

static void test_rejects_bad_length(void)
{
    UNIT_CASE("b64url rejects length 1 mod 4");
    CHECK(decode_rejects("Z", 1));
    CHECK(decode_rejects("Zm9vY", 5));
    CHECK(decode_rejects("Zm9vYmFyZ", 9));
}

static void test_rejects_noncanonical_tail(void)
{
    UNIT_CASE("b64url rejects non-canonical tail");
    unsigned char *out = NULL;
    size_t out_len = 0;

    /* "QQ" is the only spelling of "A": "QR" sets one of the four unused bits. */
    CHECK_INT(b64url_decode("QQ", 2, &out, &out_len), 0);
    CHECK_INT(out_len, 1);
    CHECK(out != NULL);
    if (out != NULL)
        CHECK(out[0] == 'A');
    free(out);
    CHECK(decode_rejects("QR", 2));
    CHECK(decode_rejects("QX", 2));

    /* "QUE" is the only spelling of "AA": "QUF" sets one of the two unused bits. */
    out = NULL;
    CHECK_INT(b64url_decode("QUE", 3, &out, &out_len), 0);
    CHECK_INT(out_len, 2);
    CHECK(out != NULL);
    if (out != NULL)
        CHECK(memcmp(out, "AA", 2) == 0);
    free(out);
    CHECK(decode_rejects("QUF", 3));
    CHECK(decode_rejects("QUG", 3));
}

static void test_encoded_len(void)
{
    UNIT_CASE("b64url encoded length");
    CHECK_INT(b64url_encoded_len(0), 0);
    CHECK_INT(b64url_encoded_len(1), 2);
    CHECK_INT(b64url_encoded_len(2), 3);
    CHECK_INT(b64url_encoded_len(3), 4);
    CHECK_INT(b64url_encoded_len(32), 43);
    CHECK_INT(b64url_encoded_len(256), 342);
}

int main(void)
{
    test_rfc4648_vectors();
    test_url_alphabet();
    test_round_trip();
    test_empty_input();
    test_rejects_padding();
    test_rejects_whitespace();
    test_rejects_standard_alphabet();
    test_rejects_nul_byte();
    test_rejects_bad_length();
    test_rejects_noncanonical_tail();
    test_encoded_len();
    return unit_finish("b64url");
}
