/* test_sha256.c - SHA-256 against the FIPS 180-4 example vectors, the
 * padding boundaries (55, 56, 63, 64 bytes) and a streamed million 'a'. */
#include <stdio.h>
#include <string.h>

#include "common/sha256.h"
#include "tap.h"

static const char *hash_of(const void *data, size_t len, size_t chunk)
{
	static char hex[SHA256_HEX_LEN + 1];
	struct sha256 c;
	const char *p = data;
	sha256_init(&c);
	while (len) {
		size_t n = len < chunk ? len : chunk;
		sha256_update(&c, p, n);
		p += n;
		len -= n;
	}
	sha256_final_hex(&c, hex);
	return hex;
}

int main(void)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
		{ "The quick brown fox jumps over the lazy dog",
		  "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		TAP_STREQ(hash_of(v[i].in, strlen(v[i].in), 1 << 20), v[i].hex,
			  "vector %zu (%zu bytes) in one piece", i, strlen(v[i].in));
		TAP_STREQ(hash_of(v[i].in, strlen(v[i].in), 1), v[i].hex,
			  "vector %zu (%zu bytes) a byte at a time", i, strlen(v[i].in));
	}
	/* padding boundaries, checked against sha256sum */
	static char a[64];
	memset(a, 'a', sizeof(a));
	TAP_STREQ(hash_of(a, 55, 7), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
		  "55 bytes: length fits the first block");
	TAP_STREQ(hash_of(a, 56, 7), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
		  "56 bytes: padding spills into a second block");
	TAP_STREQ(hash_of(a, 63, 64), "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
		  "63 bytes");
	TAP_STREQ(hash_of(a, 64, 13), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
		  "64 bytes: exactly one block");
	/* one million 'a', the FIPS long-message vector, in uneven pieces */
	static char m[1000000];
	memset(m, 'a', sizeof(m));
	TAP_STREQ(hash_of(m, sizeof(m), 4093),
		  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		  "one million 'a' in 4093-byte pieces");
	return tap_done();
}
