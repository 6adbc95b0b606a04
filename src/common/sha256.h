/* sha256.h - SHA-256 (FIPS 180-4), to check the digests of OCI blobs
 * without a crypto library.  Pure functions, no global state. */
#ifndef AF_SHA256_H
#define AF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 64

struct sha256 {
	uint32_t h[8];
	uint64_t len;      /* bytes hashed so far */
	uint8_t buf[64];   /* a partial block */
	size_t used;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
/* Finish and write the digest; c must be initialised again to reuse it. */
void sha256_final(struct sha256 *c, uint8_t out[SHA256_DIGEST_LEN]);
/* Finish and write the digest as lowercase hex plus NUL. */
void sha256_final_hex(struct sha256 *c, char out[SHA256_HEX_LEN + 1]);

#endif
