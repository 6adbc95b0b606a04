/* pattern.c - gitignore-style path patterns (see pattern.h).
 *
 * Compilation splits the pattern at '/' into tokens.  Matching is a
 * Thompson NFA over path names: state i means "token i comes next";
 * a "**" token loops on itself and may also be skipped.  The state set
 * is a bitmap on the stack, so a query allocates nothing and its cost is
 * bounded by (names in the path) x (tokens in the pattern), however many
 * "**" the pattern holds (no backtracking blow-up). */
#include "policy/pattern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

enum tok_kind {
	TOK_LIT,  /* a literal name (escapes already removed) */
	TOK_GLOB, /* a glob within one name, raw text with escapes */
	TOK_ANY1, /* any one name */
	TOK_STAR, /* zero or more names */
};

struct pattern_tok {
	enum tok_kind kind;
	size_t len;
	const char *s; /* into pattern->strings */
};

/* Enough state bits for the longest pattern: at most one token per two
 * bytes, plus the implicit leading "**" and the accepting state. */
#define NFA_WORDS ((PATTERN_MAX_LEN / 2 + 2 + 64) / 64 + 1)

/* --- globs within one name ---------------------------------------------- */

static bool class_has(const char *name, size_t n, unsigned char c)
{
#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
	bool up = c >= 'A' && c <= 'Z', lo = c >= 'a' && c <= 'z', dg = c >= '0' && c <= '9';
	if (IS("alpha"))
		return up || lo;
	if (IS("digit"))
		return dg;
	if (IS("alnum"))
		return up || lo || dg;
	if (IS("upper"))
		return up;
	if (IS("lower"))
		return lo;
	if (IS("space"))
		return c == ' ' || (c >= '\t' && c <= '\r');
	if (IS("blank"))
		return c == ' ' || c == '\t';
	if (IS("xdigit"))
		return dg || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	if (IS("punct"))
		return c > ' ' && c < 0x7f && !(up || lo || dg);
	if (IS("print"))
		return c >= ' ' && c < 0x7f;
	if (IS("graph"))
		return c > ' ' && c < 0x7f;
	if (IS("cntrl"))
		return c < ' ' || c == 0x7f;
	return false;
#undef IS
}

static bool class_known(const char *name, size_t n)
{
	static const char *const names[] = { "alpha", "digit", "alnum", "upper", "lower", "space",
					     "blank", "xdigit", "punct", "print", "graph", "cntrl" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
			return true;
	return false;
}

/* Parse the bracket expression at p[0] == '[' (n bytes available).
 * Returns its length, or 0 if it is malformed (*why set).  If c >= 0,
 * *hit says whether the byte c is in the set. */
static size_t bracket(const char *p, size_t n, int c, bool *hit, const char **why)
{
	size_t i = 1;
	bool neg = false, in = false;
	if (i < n && (p[i] == '!' || p[i] == '^')) {
		neg = true;
		i++;
	}
	for (bool first = true;; first = false) {
		if (i >= n) {
			*why = "unterminated '[' in pattern";
			return 0;
		}
		if (p[i] == ']' && !first)
			break;
		int lo;
		if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
			const char *end = memmem(p + i + 2, n - i - 2, ":]", 2);
			if (!end || !class_known(p + i + 2, (size_t)(end - p - i - 2))) {
				*why = "unknown character class in '[...]' (use [:alpha:], [:digit:], ...)";
				return 0;
			}
			if (c >= 0 && class_has(p + i + 2, (size_t)(end - p - i - 2), (unsigned char)c))
				in = true;
			i = (size_t)(end - p) + 2;
			continue;
		}
		if (p[i] == '\\') {
			if (++i >= n) {
				*why = "trailing backslash in pattern";
				return 0;
			}
		}
		lo = (unsigned char)p[i++];
		int hi = lo;
		if (i + 1 < n && p[i] == '-' && p[i + 1] != ']') {
			i++;
			if (p[i] == '\\' && ++i >= n) {
				*why = "trailing backslash in pattern";
				return 0;
			}
			hi = (unsigned char)p[i++];
			if (hi < lo) {
				*why = "reversed range in '[...]'";
				return 0;
			}
		}
		if (c >= lo && c <= hi)
			in = true;
	}
	if (hit)
		*hit = in != neg;
	return i + 1;
}

/* Match one name s[0..slen) against the glob p[0..plen) (validated at
 * compile time).  Classic single-star backtracking: O(slen * plen). */
static bool glob_match(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t pi = 0, si = 0, star_p = 0, star_s = 0;
	bool star = false;
	const char *why;

	while (si < slen) {
		if (pi < plen) {
			char c = p[pi];
			if (c == '*') {
				while (pi < plen && p[pi] == '*')
					pi++;
				star = true;
				star_p = pi;
				star_s = si;
				continue;
			}
			if (c == '?') {
				pi++;
				si++;
				continue;
			}
			if (c == '[') {
				bool hit = false;
				size_t l = bracket(p + pi, plen - pi, (unsigned char)s[si], &hit, &why);
				if (l && hit) {
					pi += l;
					si++;
					continue;
				}
			} else {
				size_t step = 1;
				if (c == '\\' && pi + 1 < plen) {
					c = p[pi + 1];
					step = 2;
				}
				if (c == s[si]) {
					pi += step;
					si++;
					continue;
				}
			}
		}
		if (!star)
			return false;
		pi = star_p;
		si = ++star_s;
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

/* --- compilation --------------------------------------------------------- */

/* Examine the name seg[0..n) and fill *t.  The unescaped text of a
 * literal (or the raw text of a glob) is appended at *buf.  Adds the
 * name's literal character count to *lit.  Returns 0 or -EINVAL. */
static int compile_name(const char *seg, size_t n, bool last, bool multi, struct pattern_tok *t,
			char **buf, unsigned *lit, bool *wild, const char **why)
{
	if (n == 0) {
		*why = "empty name in pattern (doubled '/')";
		return -EINVAL;
	}
	if (n == 2 && seg[0] == '*' && seg[1] == '*') {
		/* a trailing "**" name is "one or more names below": since a
		 * match covers the subtree, that is exactly "any one name" */
		t->kind = last && multi ? TOK_ANY1 : TOK_STAR;
		*wild = true;
		return 0;
	}
	bool glob = false, stars_only = true;
	size_t unesc = 0;
	for (size_t i = 0; i < n; i++) {
		char c = seg[i];
		if (c != '*')
			stars_only = false;
		if (c == '\\') {
			if (i + 1 >= n) {
				*why = "trailing backslash in pattern";
				return -EINVAL;
			}
			i++;
			unesc++;
			continue;
		}
		if (c == '*' || c == '?') {
			glob = true;
			continue;
		}
		if (c == '[') {
			size_t l = bracket(seg + i, n - i, -1, NULL, why);
			if (!l)
				return -EINVAL;
			glob = true;
			i += l - 1;
			continue;
		}
		unesc++;
	}
	*lit += (unsigned)unesc;
	char *out = *buf;
	if (glob) {
		*wild = true;
		if (stars_only) {
			t->kind = TOK_ANY1;
			return 0;
		}
		t->kind = TOK_GLOB;
		memcpy(out, seg, n);
		t->len = n;
	} else {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (seg[i] == '\\')
				i++;
			out[k++] = seg[i];
		}
		if ((k == 1 && out[0] == '.') || (k == 2 && out[0] == '.' && out[1] == '.')) {
			*why = "'.' and '..' are not allowed in a pattern";
			return -EINVAL;
		}
		t->kind = TOK_LIT;
		t->len = k;
	}
	out[t->len] = '\0';
	t->s = out;
	*buf = out + t->len + 1;
	return 0;
}

void pattern_clear(struct pattern *pat)
{
	free(pat->tok);
	free(pat->strings);
	memset(pat, 0, sizeof(*pat));
}

int pattern_compile(struct pattern *pat, const char *text, const char **why)
{
	memset(pat, 0, sizeof(*pat));
	size_t len = strnlen(text, PATTERN_MAX_LEN + 1);
	if (len == 0) {
		*why = "empty pattern";
		return -EINVAL;
	}
	if (len > PATTERN_MAX_LEN) {
		*why = "pattern longer than 4096 bytes";
		return -EINVAL;
	}
	if (text[0] == '!') {
		*why = "negation ('!') is not supported: give the path a rule of its own "
		       "(write '\\!' for a name starting with '!')";
		return -EINVAL;
	}
	const char *b = text, *e = text + len;
	bool anchored = false;
	unsigned slashes = 0;
	/* a trailing '/' preceded by an odd run of '\' would be escaped,
	 * but names cannot hold '/', so "\/" is rejected below anyway */
	if (e[-1] == '/') {
		pat->dir_only = true;
		e--;
		slashes++;
	}
	if (b < e && *b == '/') {
		anchored = true;
		b++;
		slashes++;
	}
	if (b == e) {
		*why = "empty pattern ('**' matches everything)";
		return -EINVAL;
	}

	size_t nseg = 1;
	for (const char *q = b; q < e; q++)
		if (*q == '/')
			nseg++;
	for (const char *q = b; q + 1 < e; q++) {
		if (*q == '\\' && q[1] == '/') {
			*why = "'/' cannot be escaped: names never contain it";
			return -EINVAL;
		}
		if (*q == '\\')
			q++;
	}
	if (nseg > 1)
		anchored = true;

	autofree struct pattern_tok *tok = xcalloc(nseg + 1, sizeof(*tok));
	autofree char *strings = xmalloc((size_t)(e - b) + nseg + 1);
	char *buf = strings;
	size_t ntok = 0;
	bool wild = false;

	if (!anchored && !(e - b == 2 && b[0] == '*' && b[1] == '*'))
		tok[ntok++].kind = TOK_STAR; /* a bare name matches at any depth */
	const char *s = b;
	for (size_t i = 0; i < nseg; i++) {
		const char *t = memchr(s, '/', (size_t)(e - s));
		if (!t)
			t = e;
		struct pattern_tok cur = { 0 };
		int r = compile_name(s, (size_t)(t - s), i == nseg - 1, nseg > 1, &cur, &buf,
				     &pat->literal, &wild, why);
		if (r < 0)
			return r;
		/* "**" runs collapse: they match the same thing as one */
		if (!(cur.kind == TOK_STAR && ntok > 0 && tok[ntok - 1].kind == TOK_STAR))
			tok[ntok++] = cur;
		s = t + 1;
	}
	pat->literal += slashes + (unsigned)(nseg - 1);
	pat->klass = wild ? PATTERN_GLOB : pat->dir_only ? PATTERN_DIR : PATTERN_EXACT;
	for (size_t i = 0; i < ntok && ntok < 64; i++) {
		if (tok[i].kind == TOK_STAR)
			pat->star_mask |= (uint64_t)1 << i;
		if (tok[i].kind == TOK_STAR || tok[i].kind == TOK_ANY1)
			pat->any_mask |= (uint64_t)1 << i;
	}
	pat->ntok = ntok;
	pat->tok = steal_pointer(&tok);
	pat->strings = steal_pointer(&strings);
	return 0;
}

/* --- matching ------------------------------------------------------------ */

#define BIT_SET(b, i) ((b)[(i) >> 6] |= (uint64_t)1 << ((i) & 63))
#define BIT_TEST(b, i) (((b)[(i) >> 6] >> ((i) & 63)) & 1)

/* A "**" may match nothing: whoever stands before it also stands after. */
static void closure(const struct pattern *pat, uint64_t *S)
{
	for (size_t i = 0; i < pat->ntok; i++)
		if (pat->tok[i].kind == TOK_STAR && BIT_TEST(S, i))
			BIT_SET(S, i + 1);
}

static bool tok_match(const struct pattern_tok *t, const char *name, size_t n)
{
	switch (t->kind) {
	case TOK_LIT:
		return t->len == n && memcmp(t->s, name, n) == 0;
	case TOK_GLOB:
		return glob_match(t->s, t->len, name, n);
	case TOK_ANY1:
	case TOK_STAR:
		return true;
	}
	return false;
}

/* N = closure(step(S, name)).  name == NULL means "an arbitrary name":
 * only tokens matching every name advance.  Returns whether N is
 * non-empty. */
static bool step(const struct pattern *pat, const uint64_t *S, uint64_t *N, size_t w,
		 const char *name, size_t n)
{
	bool any = false;
	memset(N, 0, w * sizeof(*N));
	for (size_t j = 0; j < w; j++) {
		for (uint64_t x = S[j]; x; x &= x - 1) {
			size_t i = j * 64 + (size_t)__builtin_ctzll(x);
			if (i >= pat->ntok)
				continue; /* the accepting state consumes nothing */
			const struct pattern_tok *t = &pat->tok[i];
			if (t->kind == TOK_STAR) {
				BIT_SET(N, i);
				any = true;
			} else if (name ? tok_match(t, name, n) : t->kind == TOK_ANY1) {
				BIT_SET(N, i + 1);
				any = true;
			}
		}
	}
	if (any)
		closure(pat, N);
	return any;
}

/* The same NFA in one machine word, for patterns of fewer than 64
 * tokens (all practical ones).  "**" runs are collapsed at compile
 * time, so one shift computes the closure. */
#define CLOSE(pat, x) ((x) | (((x) & (pat)->star_mask) << 1))

static uint64_t step1(const struct pattern *pat, uint64_t S, const char *name, size_t n)
{
	const uint64_t acc = (uint64_t)1 << pat->ntok;
	uint64_t N = S & pat->star_mask;
	N |= (S & pat->any_mask & ~pat->star_mask) << 1;
	for (uint64_t x = S & ~pat->any_mask & (acc - 1); x; x &= x - 1) {
		unsigned i = (unsigned)__builtin_ctzll(x);
		if (tok_match(&pat->tok[i], name, n))
			N |= (uint64_t)1 << (i + 1);
	}
	return CLOSE(pat, N);
}

static void eval_small(const struct pattern *pat, const char *path, bool is_dir, bool below,
		       struct pattern_match *out)
{
	const uint64_t acc = (uint64_t)1 << pat->ntok;
	uint64_t S = CLOSE(pat, (uint64_t)1);

	if (S & acc)
		goto covered;
	for (const char *p = path; *p;) {
		const char *slash = p;
		while (*slash && *slash != '/') /* names are short: no call */
			slash++;
		bool last = !*slash || !slash[1];
		S = step1(pat, S, p, (size_t)(slash - p));
		if (!S)
			return;
		if ((S & acc) && (!last || !pat->dir_only || is_dir))
			goto covered;
		if (last)
			break;
		p = slash + 1;
	}
	if (!below)
		return;
	out->descendant = (S & (acc - 1)) != 0;
	if (out->descendant && !pat->dir_only) {
		uint64_t N = (S & pat->star_mask) | ((S & pat->any_mask & ~pat->star_mask) << 1);
		out->all_children = (CLOSE(pat, N) & acc) != 0;
	}
	return;
covered:
	out->covers = out->descendant = out->all_children = true;
}

void pattern_eval(const struct pattern *pat, const char *path, bool is_dir, bool below,
		  struct pattern_match *out)
{
	if (pat->ntok > 0 && pat->ntok < 64) {
		out->covers = out->descendant = out->all_children = false;
		eval_small(pat, path, is_dir, below, out);
		return;
	}

	uint64_t a[NFA_WORDS], b[NFA_WORDS];
	uint64_t *S = a, *N = b;
	const size_t m = pat->ntok, w = m / 64 + 1;

	out->covers = out->descendant = out->all_children = false;
	if (m == 0)
		return;
	memset(S, 0, w * sizeof(*S));
	BIT_SET(S, 0);
	closure(pat, S);
	/* matching the root (only "**" can) covers everything */
	if (BIT_TEST(S, m))
		goto covered;

	for (const char *p = path; *p;) {
		const char *slash = strchrnul(p, '/');
		bool last = !*slash || !slash[1];
		if (!step(pat, S, N, w, p, (size_t)(slash - p)))
			return;
		uint64_t *tmp = S;
		S = N;
		N = tmp;
		/* a matched ancestor is a directory: it covers us whatever
		 * dir_only says; the path itself must satisfy it */
		if (BIT_TEST(S, m) && (!last || !pat->dir_only || is_dir))
			goto covered;
		if (last)
			break;
		p = slash + 1;
	}
	if (!below)
		return;

	/* any live state short of acceptance can still be completed by
	 * choosing suitable names below the path */
	for (size_t j = 0; j < w; j++) {
		uint64_t x = S[j];
		if (j == m / 64)
			x &= ~((uint64_t)1 << (m & 63));
		if (x) {
			out->descendant = true;
			break;
		}
	}
	if (out->descendant && !pat->dir_only && step(pat, S, N, w, NULL, 0) && BIT_TEST(N, m))
		out->all_children = true;
	return;

covered:
	out->covers = out->descendant = out->all_children = true;
}

bool pattern_covers(const struct pattern *pat, const char *path, bool is_dir)
{
	struct pattern_match m;
	pattern_eval(pat, path, is_dir, false, &m);
	return m.covers;
}
