/* test_sha.c - SHA-1 and SHA-256 against the FIPS 180 example vectors,
 * the padding boundaries (55, 56, 63, 64 bytes) and a streamed million
 * 'a', each whole and in pieces. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/sha1.h"
#include "common/sha256.h"
#include "tap.h"

enum algo { SHA1, SHA256 };
static const char *const algo_name[] = { "SHA-1", "SHA-256" };

/* The digest of data as hex, fed chunk bytes at a time. */
static const char *hash_of(enum algo algo, const void *data, size_t len, size_t chunk)
{
	static char hex[SHA256_HEX_LEN + 1];
	struct sha1 c1;
	struct sha256 c256;
	const char *p = data;
	if (algo == SHA1)
		sha1_init(&c1);
	else
		sha256_init(&c256);
	while (len) {
		size_t n = len < chunk ? len : chunk;
		if (algo == SHA1)
			sha1_update(&c1, p, n);
		else
			sha256_update(&c256, p, n);
		p += n;
		len -= n;
	}
	if (algo == SHA256) {
		sha256_final_hex(&c256, hex);
		return hex;
	}
	uint8_t d[SHA1_DIGEST_LEN];
	sha1_final(&c1, d);
	for (int i = 0; i < SHA1_DIGEST_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	return hex;
}

int main(void)
{
	static const struct {
		const char *in, *hex[2];
	} v[] = {
		{ "",
		  { "da39a3ee5e6b4b0d3255bfef95601890afd80709",
		    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" } },
		{ "abc",
		  { "a9993e364706816aba3e25717850c26c9cd0d89d",
		    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" } },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  { "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
		    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" } },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
		  "klmnopqrlmnopqrsmnopqrstnopqrstu",
		  { "a49b2446a02c645bf419f995b67091253a04a259",
		    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" } },
		{ "The quick brown fox jumps over the lazy dog",
		  { "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
		    "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592" } },
	};
	/* 'a' times len, in pieces of chunk: where the length moves to a
	 * block of its own, and the FIPS long message */
	static const struct {
		size_t len, chunk;
		const char *what, *hex[2];
	} a_vec[] = {
		{ 55, 7, "length fits the first block",
		  { "c1c8bbdc22796e28c0e15163d20899b65621d65a",
		    "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" } },
		{ 56, 7, "padding spills into a second block",
		  { "c2db330f6083854c99d4b5bfb6e8f29f201be699",
		    "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" } },
		{ 63, 64, "one short of a block",
		  { "03f09f5b158a7a8cdad920bddc29b81c18a551f5",
		    "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" } },
		{ 64, 13, "exactly one block",
		  { "0098ba824b5c16427bd7a1122a5a442a25ec644d",
		    "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" } },
		{ 1000000, 4093, "the million of FIPS 180",
		  { "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
		    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" } },
	};
	static char a[1000000];
	memset(a, 'a', sizeof(a));
	for (int algo = SHA1; algo <= SHA256; algo++) {
		const char *name = algo_name[algo];
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
			size_t len = strlen(v[i].in);
			TAP_STREQ(hash_of(algo, v[i].in, len, 1 << 20), v[i].hex[algo],
				  "%s vector %zu (%zu bytes) in one piece", name, i, len);
			TAP_STREQ(hash_of(algo, v[i].in, len, 1), v[i].hex[algo],
				  "%s vector %zu (%zu bytes) a byte at a time", name, i, len);
		}
		for (size_t i = 0; i < sizeof(a_vec) / sizeof(a_vec[0]); i++)
			TAP_STREQ(hash_of(algo, a, a_vec[i].len, a_vec[i].chunk), a_vec[i].hex[algo],
				  "%s of %zu 'a' in %zu-byte pieces: %s", name, a_vec[i].len,
				  a_vec[i].chunk, a_vec[i].what);
	}
	return tap_done();
}
