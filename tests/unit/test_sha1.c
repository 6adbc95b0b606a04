/* test_sha1.c - SHA-1 against the FIPS 180 example vectors, the padding
 * boundaries and a streamed million 'a'. */
#include <stdio.h>
#include <string.h>

#include "common/sha1.h"
#include "tap.h"

static const char *hash_of(const void *data, size_t len, size_t chunk)
{
	static char hex[2 * SHA1_DIGEST_LEN + 1];
	uint8_t d[SHA1_DIGEST_LEN];
	struct sha1 c;
	const char *p = data;
	sha1_init(&c);
	while (len) {
		size_t n = len < chunk ? len : chunk;
		sha1_update(&c, p, n);
		p += n;
		len -= n;
	}
	sha1_final(&c, d);
	for (int i = 0; i < SHA1_DIGEST_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	return hex;
}

int main(void)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
		{ "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
		  "klmnopqrlmnopqrsmnopqrstnopqrstu",
		  "a49b2446a02c645bf419f995b67091253a04a259" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		TAP_STREQ(hash_of(v[i].in, strlen(v[i].in), 1000), v[i].hex, "vector %zu", i);
		TAP_STREQ(hash_of(v[i].in, strlen(v[i].in), 1), v[i].hex, "vector %zu bytewise", i);
	}
	static char a[1000000];
	memset(a, 'a', sizeof(a));
	TAP_STREQ(hash_of(a, sizeof(a), 4096), "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
		  "a million 'a'");
	/* 55, 56, 63, 64 bytes: where the length moves to a block of its own */
	static const char *const pad[] = {
		"c1c8bbdc22796e28c0e15163d20899b65621d65a",
		"c2db330f6083854c99d4b5bfb6e8f29f201be699",
		"03f09f5b158a7a8cdad920bddc29b81c18a551f5",
		"0098ba824b5c16427bd7a1122a5a442a25ec644d",
	};
	static const size_t lens[] = { 55, 56, 63, 64 };
	for (size_t i = 0; i < 4; i++)
		TAP_STREQ(hash_of(a, lens[i], 7), pad[i], "%zu bytes of 'a'", lens[i]);
	return tap_done();
}
