/* sha1.h - SHA-1 (FIPS 180-4), for the trailing checksum of a git index
 * in a SHA-1 repository.  Not for anything that must resist collisions.
 * Pure functions, no global state. */
#ifndef AF_SHA1_H
#define AF_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_LEN 20

struct sha1 {
	uint32_t h[5];
	uint64_t len;    /* bytes hashed so far */
	uint8_t buf[64]; /* a partial block */
	size_t used;
};

void sha1_init(struct sha1 *c);
void sha1_update(struct sha1 *c, const void *data, size_t len);
/* Finish and write the digest; c must be initialised again to reuse it. */
void sha1_final(struct sha1 *c, uint8_t out[SHA1_DIGEST_LEN]);

#endif
