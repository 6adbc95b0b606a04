/* test_gitprep.c - the parsers git in the sandbox relies on: the
 * configuration cleaner (exact output, malformed input refused) and the
 * index rewrite (v2, v3, v4; SHA-1 and SHA-256; set then clear gives the
 * index back byte for byte), then both fed mutated input, which must
 * only ever be refused (the sandbox writes the index sync parses). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha1.h"
#include "common/sha256.h"
#include "delta/gitprep.h"
#include "policy/policy.h"
#include "tap.h"

struct ibuf {
	uint8_t p[4096];
	size_t len;
};

static void put(struct ibuf *b, const void *d, size_t n)
{
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void put32(struct ibuf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put(b, x, 4);
}

static void put16(struct ibuf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(b, x, 2);
}

static void checksum(struct ibuf *b, size_t hashlen)
{
	uint8_t d[SHA256_DIGEST_LEN];
	if (hashlen == SHA1_DIGEST_LEN) {
		struct sha1 c;
		sha1_init(&c);
		sha1_update(&c, b->p, b->len);
		sha1_final(&c, d);
	} else {
		struct sha256 c;
		sha256_init(&c);
		sha256_update(&c, b->p, b->len);
		sha256_final(&c, d);
	}
	put(b, d, hashlen);
}

static const char *const names[] = { ".env", "README.md", "secrets/k", "src/main.c" };

/* An index as git writes it, of version ver, with the four names. */
static void make_index(struct ibuf *b, unsigned ver, size_t hashlen)
{
	b->len = 0;
	put(b, "DIRC", 4);
	put32(b, ver);
	put32(b, 4);
	const char *prev = "";
	for (size_t i = 0; i < 4; i++) {
		size_t start = b->len;
		uint8_t stat[24] = { 0 };
		stat[3] = (uint8_t)i;
		put(b, stat, 24);
		put32(b, 0100644);
		put32(b, 1000);
		put32(b, 1000);
		put32(b, 42);
		uint8_t oid[SHA256_DIGEST_LEN];
		memset(oid, 0x11 * (int)(i + 1), sizeof(oid));
		put(b, oid, hashlen);
		put16(b, (uint16_t)strlen(names[i]));
		if (ver == 4) {
			size_t common = 0;
			while (prev[common] && prev[common] == names[i][common])
				common++;
			uint8_t strip = (uint8_t)(strlen(prev) - common);
			put(b, &strip, 1);
			put(b, names[i] + common, strlen(names[i]) - common + 1);
		} else {
			put(b, names[i], strlen(names[i]));
			size_t total = (b->len - start + 8) & ~(size_t)7;
			static const uint8_t z[8];
			put(b, z, total - (b->len - start));
		}
		prev = names[i];
	}
	/* a TREE extension, kept as it is */
	put(b, "TREE", 4);
	put32(b, 3);
	put(b, "abc", 3);
	checksum(b, hashlen);
}

static bool checksum_ok(const uint8_t *p, size_t len, size_t hashlen)
{
	struct ibuf b;
	memcpy(b.p, p, len - hashlen);
	b.len = len - hashlen;
	checksum(&b, hashlen);
	return memcmp(b.p + len - hashlen, p + len - hashlen, hashlen) == 0;
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static void test_index(const struct policy *pol, unsigned ver, size_t hashlen)
{
	struct ibuf b;
	make_index(&b, ver, hashlen);
	void *out = NULL, *back = NULL;
	size_t olen = 0, blen = 0;
	int r = gitprep_index_mark(b.p, b.len, hashlen, pol, true, &out, &olen);
	TAP_OK(r == 1, "v%u/%zu: the unreadable paths are marked", ver, hashlen);
	const uint8_t *o = out;
	TAP_OK(olen > 12 && o[7] == (ver == 2 ? 3 : ver), "v%u/%zu: version %u after", ver, hashlen,
	       ver == 2 ? 3 : ver);
	TAP_OK(olen > hashlen && checksum_ok(o, olen, hashlen), "v%u/%zu: checksum made anew", ver,
	       hashlen);
	/* the first entry (.env) has the extended flag and skip-worktree */
	size_t fl = 12 + 40 + hashlen;
	TAP_OK(olen > fl + 4 && (o[fl] & 0x40) && o[fl + 2] == 0x40 && o[fl + 3] == 0,
	       "v%u/%zu: .env is skip-worktree", ver, hashlen);
	void *again = NULL;
	size_t alen = 0;
	TAP_OK(gitprep_index_mark(out, olen, hashlen, pol, true, &again, &alen) == 0,
	       "v%u/%zu: marking twice changes nothing", ver, hashlen);
	free(again);
	r = gitprep_index_mark(out, olen, hashlen, pol, false, &back, &blen);
	/* git writes version 2 when no entry has an extended flag */
	struct ibuf want;
	make_index(&want, ver == 3 ? 2 : ver, hashlen);
	TAP_OK(r == 1 && blen == want.len && memcmp(back, want.p, want.len) == 0,
	       "v%u/%zu: clearing gives the index back byte for byte", ver, hashlen);
	free(back);

	/* mutated: refused or rewritten, never read out of bounds */
	unsigned bad = 0;
	for (int i = 0; i < 20000; i++) {
		struct ibuf m = b;
		const struct ibuf *src = (i & 1) ? &b : NULL;
		if (!src) {
			memcpy(m.p, out, olen);
			m.len = olen;
		}
		int flips = 1 + (int)(rnd() % 4);
		for (int k = 0; k < flips; k++)
			m.p[rnd() % m.len] = (uint8_t)rnd();
		if (rnd() % 4 == 0)
			m.len = rnd() % m.len;
		void *mo = NULL;
		size_t ml = 0;
		r = gitprep_index_mark(m.p, m.len, hashlen, pol, (i & 2) != 0, &mo, &ml);
		if (r != 0 && r != 1 && r != -EINVAL && r != -ENOTSUP)
			bad++;
		free(mo);
	}
	TAP_OK(bad == 0, "v%u/%zu: 20000 mutated indexes are refused or rewritten", ver, hashlen);
	free(out);
}

static void test_config(void)
{
	static const char in[] =
		"[core]\n"
		"\trepositoryformatversion = 1\n"
		"\tfsmonitor = echo pwned\n"
		"\thooksPath = /tmp/h ; a comment\n"
		"\tbare\n"
		"[extensions]\n"
		"\tobjectFormat = sha256\n"
		"[remote \"or\\\"igin\"]\n"
		"\turl = https://user:tok@example.com:8443/r.git?token=x\n"
		"\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
		"\tuploadpack = evil\n"
		"[remote.old]\n"
		"\turl = ext::sh -c evil\n"
		"\tpushurl = \"git@example.com:a b.git\" # kept\n"
		"[branch \"main\"]\n"
		"\tmerge = refs/heads/\\\n"
		"main\n"
		"[credential]\n\thelper = store\n"
		"[include]\n\tpath = x\n"
		"[url \"https://tok@example.com/\"]\n\tinsteadOf = https://example.com/\n";
	bool sha256 = false;
	char *c = gitprep_config_clean(in, sizeof(in) - 1, &sha256);
	TAP_STREQ(c,
		  "# the repository's configuration as agentfense shows it in the sandbox\n"
		  "[core]\n"
		  "\trepositoryformatversion = \"1\"\n"
		  "\tbare\n"
		  "[extensions]\n"
		  "\tobjectformat = \"sha256\"\n"
		  "[remote \"or\\\"igin\"]\n"
		  "\turl = \"https://example.com:8443/r.git\"\n"
		  "\tfetch = \"+refs/heads/*:refs/remotes/origin/*\"\n"
		  "[remote \"old\"]\n"
		  "\tpushurl = \"git@example.com:a b.git\"\n"
		  "[branch \"main\"]\n"
		  "\tmerge = \"refs/heads/main\"\n",
		  "the configuration keeps the allowlist, cleans URLs");
	TAP_OK(sha256, "extensions.objectformat = sha256 is seen");
	free(c);
	static const char *const bad[] = {
		"[core\n", "[a \"b]\n", "[core]\n\tx = \"open\n", "[core]\n\t=x\n", "[core]\n\tx = \\q\n",
		"[core]\n\tx y\n", "x = 1\n", "[\"a\"]\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = gitprep_config_clean(bad[i], strlen(bad[i]), &sha256);
		TAP_OK(c == NULL, "malformed configuration %zu is refused", i);
		free(c);
	}
	unsigned unstable = 0;
	for (int i = 0; i < 20000; i++) {
		char m[sizeof(in)];
		memcpy(m, in, sizeof(in));
		size_t len = sizeof(in) - 1;
		for (int k = 0; k < 3; k++)
			m[rnd() % len] = (char)rnd();
		if (rnd() % 3 == 0)
			len = rnd() % len;
		c = gitprep_config_clean(m, len, &sha256);
		/* what is shown reads back as itself: every value quoted right */
		char *again = c ? gitprep_config_clean(c, strlen(c), &sha256) : NULL;
		if (c && (!again || strcmp(again, c) != 0) && !unstable++)
			printf("# unstable:\n%s\n# read back:\n%s\n", c, again ? again : "(null)");
		free(again);
		free(c);
	}
	TAP_OK(unstable == 0, "20000 mutated configurations: what is shown reads back as itself");
}

int main(void)
{
	struct af_err err = { 0 };
	struct policy *pol = policy_new();
	if (policy_add_preset(pol, "development", &err) < 0) {
		printf("Bail out! %s\n", err.msg);
		return 1;
	}
	policy_finalize(pol);
	test_index(pol, 2, SHA1_DIGEST_LEN);
	test_index(pol, 3, SHA1_DIGEST_LEN);
	test_index(pol, 4, SHA1_DIGEST_LEN);
	test_index(pol, 2, SHA256_DIGEST_LEN);
	test_index(pol, 4, SHA256_DIGEST_LEN);
	test_config();
	policy_free(pol);
	return tap_done();
}
