/* gitprep.c - what the delta prepares so that git in the sandbox works on
 * the project's repository as on the host, and what sync undoes of it.
 *
 * Before the view starts, for the repository whose '.git' directory is
 * at the project's root (when the policy lets the sandbox read it), for
 * its linked worktrees checked out in the project (whose '.git' file,
 * naming the git directory by its host path, is shown with a relative
 * one) and for its submodules' repositories in .git/modules:
 *
 *   - the configuration (.git/config, .git/config.worktree), which the
 *     presets hide, is put in the delta rebuilt from the keys git needs
 *     to read the repository and knows no program or credential by:
 *     core's format keys, every extensions.* key (objectformat, ...),
 *     remotes and branches with the user information and query of
 *     their URLs cut off, and a few preferences (allowlist below).  The
 *     view shows it read-only (delta_add_shown()).  Everything else
 *     (include, includeIf, filter, credential, url, http, alias,
 *     core.fsmonitor, core.hooksPath, core.sshCommand, core.editor, ...)
 *     is left out, so nothing in it runs a program or holds a secret.
 *   - the index gets the skip-worktree bit on every tracked path the
 *     sandbox cannot read (hidden, or view only): git then takes those
 *     files as "not checked out here" and neither shows them deleted nor
 *     stages their deletion (add -A, commit -a, stash), and never opens
 *     them.  A version 2 index becomes version 3, which can hold the
 *     bit; the optional EOIE and IEOT extensions, whose offsets move,
 *     are dropped; the checksum (SHA-1 or SHA-256, as the repository's
 *     extensions.objectformat) is made anew.
 *
 * What it made is recorded in the run directory (file "git-made": the
 * SHA-256 of each file, the object name length, its path and its
 * worktree's place in the project).  Sync drops a made file the
 * sandbox left as it was, and clears in the sandbox's index the
 * skip-worktree bits of paths the sandbox cannot read, unless the
 * project's own index has the bit on that path too, so the host's
 * repository never keeps a trace of the sandbox's view.
 *
 * A split index (a "link" extension) or an index that cannot be parsed
 * is left as it is.  The project's git directories are read without
 * following a symbolic link on the way. */
#include "delta/gitprep.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/sha1.h"
#include "common/sha256.h"
#include "delta/delta_int.h"
#include "policy/policy.h"

#define MAX_CONFIG (1u << 20)
#define MAX_INDEX (512u << 20)
#define MADE_FILE "git-made"
/* Submodule git directories looked at, and how deep (git nests a
 * submodule's own in its modules/). */
#define MAX_MODULES 1000
#define MAX_MODULE_DEPTH 16

/* ---- a growing buffer --------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* ---- files ------------------------------------------------------------- */

/* Read regular file name in dirfd (never through a symlink), at most max
 * bytes, into *out (malloc'd, NUL-terminated); *st gets its stat.
 * Returns 0 or -errno (-EFBIG past max). */
static int read_file(int dirfd, const char *name, size_t max, char **out, size_t *len,
		     struct stat *st)
{
	autoclose int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	if ((uint64_t)st->st_size > max)
		return -EFBIG;
	struct buf b = { 0 };
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(b.p);
			return -e;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			free(b.p);
			return -EFBIG;
		}
		buf_add(&b, chunk, (size_t)n);
	}
	if (!b.p)
		b.p = xstrdup("");
	*out = b.p;
	*len = b.len;
	return 0;
}

/* Write data as name in dirfd through a temp file and rename, with mode
 * and, if times is not NULL, those times.  Returns 0 or -errno. */
static int write_file(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		      const struct timespec *times)
{
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) < 0)
		rnd = (uint64_t)getpid();
	char tmp[40];
	snprintf(tmp, sizeof(tmp), ".af-git-%016llx", (unsigned long long)rnd);
	autoclose int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				  0600);
	if (fd < 0)
		return -errno;
	const char *p = data;
	int r = 0;
	while (len && r == 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	if (r == 0 && fchmod(fd, mode & 07777) < 0)
		r = -errno;
	if (r == 0 && times && futimens(fd, times) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, tmp, 0);
	return r;
}

static void hash_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
	struct sha256 c;
	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final_hex(&c, out);
}

/* ---- the configuration --------------------------------------------------- */

/* Keys kept, as "section.key" (no subsection) or "section.*.key" (with
 * one); "extensions.*" keeps them all.  Nothing here names a program to
 * run, a hook, a credential or a file outside the repository. */
static const char *const kept_keys[] = {
	"core.repositoryformatversion", "core.bare", "core.filemode", "core.logallrefupdates",
	"core.ignorecase", "core.precomposeunicode", "core.symlinks", "core.autocrlf",
	"core.eol", "core.safecrlf", "core.checkstat", "core.trustctime",
	"core.sparsecheckout", "core.sparsecheckoutcone", "core.splitindex",
	"core.untrackedcache", "core.commitgraph", "core.multipackindex", "core.abbrev",
	"core.quotepath", "core.protecthfs", "core.protectntfs", "core.compression",
	"core.loosecompression", "core.bigfilethreshold", "core.warnambiguousrefs",
	"index.version", "index.skiphash", "index.sparse", "feature.manyfiles",
	"init.defaultbranch", "user.name", "user.email",
	"remote.*.url", "remote.*.pushurl", "remote.*.fetch", "remote.*.push",
	"remote.*.tagopt", "remote.*.mirror", "remote.*.prune", "remote.*.prunetags",
	"remote.*.promisor", "remote.*.partialclonefilter",
	"branch.*.remote", "branch.*.pushremote", "branch.*.merge", "branch.*.rebase",
	"submodule.*.url", "submodule.*.active", "submodule.*.branch",
	"pull.rebase", "pull.ff", "merge.ff", "merge.conflictstyle", "rebase.autosquash",
	"rebase.autostash", "push.default", "push.autosetupremote", "fetch.prune",
	"status.showuntrackedfiles", "diff.renames", "diff.algorithm",
	NULL,
};

static bool key_kept(const char *section, const char *sub, const char *key)
{
	if (strcmp(section, "extensions") == 0 && !sub)
		return true;
	for (size_t i = 0; kept_keys[i]; i++) {
		const char *k = kept_keys[i];
		size_t sl = strlen(section);
		if (strncmp(k, section, sl) != 0 || k[sl] != '.')
			continue;
		const char *rest = k + sl + 1;
		if (sub) {
			if (strncmp(rest, "*.", 2) != 0)
				continue;
			rest += 2;
		} else if (strchr(rest, '.')) {
			continue;
		}
		if (strcmp(rest, key) == 0)
			return true;
	}
	return false;
}

/* A remote's URL as the sandbox may see it: user information (a token
 * in "https://TOKEN@host/") and the query cut off; NULL for a remote
 * helper ("ext::cmd", "fd::") that would run a program. */
static char *clean_url(const char *url)
{
	const char *p = url;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (p > url && p[0] == ':' && p[1] == ':')
		return NULL;
	const char *scheme_end = strstr(url, "://");
	if (!scheme_end || strchr(url, '/') < scheme_end)
		return xstrdup(url); /* scp-like "user@host:path" or a path: no secret */
	const char *auth = scheme_end + 3;
	const char *auth_end = auth + strcspn(auth, "/?#");
	const char *at = NULL;
	for (const char *q = auth; q < auth_end; q++)
		if (*q == '@')
			at = q;
	const char *host = at ? at + 1 : auth;
	size_t keep = strcspn(host, "?#");
	return xasprintf("%.*s%.*s", (int)(auth - url), url, (int)keep, host);
}

struct cfg_parser {
	const char *p, *end;
	char section[64];
	char *sub; /* subsection, or NULL */
	struct buf out;
	char *emitted; /* "section\nsub" of the last header written */
	bool sha256;
	char *worktree; /* core.worktree, which is not shown */
};

/* Quote v as a value, or (sub) as a subsection name, which knows no
 * escapes but \\ and \" and holds no newline. */
static void emit_quoted(struct buf *b, const char *v, bool sub)
{
	buf_str(b, "\"");
	for (const char *s = v; *s; s++) {
		if (*s == '\\' || *s == '"') {
			buf_str(b, "\\");
			buf_add(b, s, 1);
		} else if (!sub && *s == '\n') {
			buf_str(b, "\\n");
		} else if (!sub && *s == '\t') {
			buf_str(b, "\\t");
		} else if (!sub && *s == '\b') {
			buf_str(b, "\\b");
		} else {
			buf_add(b, s, 1);
		}
	}
	buf_str(b, "\"");
}

static void emit_key(struct cfg_parser *c, const char *key, const char *value)
{
	autofree char *v = NULL;
	if (strcmp(c->section, "core") == 0 && !c->sub && strcmp(key, "worktree") == 0 && value) {
		free(c->worktree);
		c->worktree = xstrdup(value);
	}
	if (!key_kept(c->section, c->sub, key))
		return;
	if (value && (strcmp(key, "url") == 0 || strcmp(key, "pushurl") == 0)) {
		v = clean_url(value);
		if (!v)
			return;
		value = v;
	}
	if (strcmp(c->section, "extensions") == 0 && strcmp(key, "objectformat") == 0 && value)
		c->sha256 = strcasecmp(value, "sha256") == 0;
	autofree char *hdr = xasprintf("%s\n%s", c->section, c->sub ? c->sub : "");
	if (!c->emitted || strcmp(c->emitted, hdr) != 0) {
		if (c->sub) {
			buf_str(&c->out, "[");
			buf_str(&c->out, c->section);
			buf_str(&c->out, " ");
			emit_quoted(&c->out, c->sub, true);
			buf_str(&c->out, "]\n");
		} else {
			buf_str(&c->out, "[");
			buf_str(&c->out, c->section);
			buf_str(&c->out, "]\n");
		}
		free(c->emitted);
		c->emitted = steal_pointer(&hdr);
	}
	buf_str(&c->out, "\t");
	buf_str(&c->out, key);
	if (value) {
		buf_str(&c->out, " = ");
		emit_quoted(&c->out, value, false);
	}
	buf_str(&c->out, "\n");
}

static void skip_line(struct cfg_parser *c)
{
	while (c->p < c->end && *c->p != '\n')
		c->p++;
}

/* A section header, c->p after '['.  Returns 0 or -EINVAL. */
static int parse_section(struct cfg_parser *c)
{
	size_t n = 0;
	free(c->sub);
	c->sub = NULL;
	while (c->p < c->end && (isalnum((unsigned char)*c->p) || *c->p == '-' || *c->p == '.')) {
		if (n + 1 >= sizeof(c->section))
			return -EINVAL;
		c->section[n++] = (char)tolower((unsigned char)*c->p++);
	}
	c->section[n] = '\0';
	if (n == 0 || c->p >= c->end)
		return -EINVAL;
	char *dot = strchr(c->section, '.');
	if (*c->p == ']') {
		c->p++;
		if (dot) { /* [section.sub], the old spelling */
			*dot = '\0';
			c->sub = xstrdup(dot + 1);
		}
		return 0;
	}
	if (dot)
		return -EINVAL;
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
	if (c->p >= c->end || *c->p++ != '"')
		return -EINVAL;
	struct buf s = { 0 };
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\n') {
			free(s.p);
			return -EINVAL;
		}
		if (*c->p == '\\' && c->p + 1 < c->end)
			c->p++;
		buf_add(&s, c->p++, 1);
	}
	if (c->p + 1 >= c->end || c->p[1] != ']') {
		free(s.p);
		return -EINVAL;
	}
	c->p += 2;
	c->sub = s.p ? s.p : xstrdup("");
	return 0;
}

/* A value, c->p after '='; as git's parse_value().  Returns a malloc'd
 * string, or NULL if malformed. */
static char *parse_value(struct cfg_parser *c)
{
	struct buf v = { 0 };
	bool quote = false;
	size_t space = 0;
	buf_add(&v, "", 0);
	while (c->p < c->end) {
		char ch = *c->p++;
		if (ch == '\n') {
			if (quote)
				goto bad;
			break;
		}
		if (!quote && (ch == ';' || ch == '#')) {
			skip_line(c);
			break;
		}
		if (!quote && isspace((unsigned char)ch)) {
			if (v.len)
				space++;
			continue;
		}
		for (; space; space--)
			buf_add(&v, " ", 1);
		if (ch == '\\') {
			if (c->p >= c->end)
				goto bad;
			ch = *c->p++;
			switch (ch) {
			case '\n': continue;
			case 't': ch = '\t'; break;
			case 'b': ch = '\b'; break;
			case 'n': ch = '\n'; break;
			case '\\': case '"': break;
			default: goto bad;
			}
			buf_add(&v, &ch, 1);
			continue;
		}
		if (ch == '"') {
			quote = !quote;
			continue;
		}
		buf_add(&v, &ch, 1);
	}
	if (quote)
		goto bad;
	return v.p;
bad:
	free(v.p);
	return NULL;
}

/* The configuration text in [text, text + len) rebuilt from its kept
 * keys.  Returns a malloc'd text, or NULL if it is malformed (git would
 * refuse it too); *sha256 tells whether the repository's objects are
 * named by SHA-256, *worktree (if not NULL) gets core.worktree
 * (malloc'd) or NULL. */
static char *config_clean(const char *text, size_t len, bool *sha256, char **worktree)
{
	struct cfg_parser c = { .p = text, .end = text + len };
	int r = 0;
	buf_str(&c.out, "# the repository's configuration as agentfense shows it in the sandbox\n");
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		c.p += 3;
	while (c.p < c.end && r == 0) {
		char ch = *c.p;
		if (ch == '\n' || isspace((unsigned char)ch)) {
			c.p++;
		} else if (ch == '#' || ch == ';') {
			skip_line(&c);
		} else if (ch == '[') {
			c.p++;
			r = parse_section(&c);
		} else if (isalpha((unsigned char)ch) && c.section[0]) {
			char key[128];
			size_t n = 0;
			while (c.p < c.end && (isalnum((unsigned char)*c.p) || *c.p == '-')) {
				if (n + 1 >= sizeof(key)) {
					r = -EINVAL;
					break;
				}
				key[n++] = (char)tolower((unsigned char)*c.p++);
			}
			key[n] = '\0';
			while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
				c.p++;
			if (r < 0)
				break;
			if (c.p < c.end && *c.p == '=') {
				c.p++;
				autofree char *v = parse_value(&c);
				if (!v)
					r = -EINVAL;
				else
					emit_key(&c, key, v);
			} else if (c.p >= c.end || *c.p == '\n' || *c.p == '#' || *c.p == ';' ||
				   *c.p == '\r') {
				skip_line(&c);
				emit_key(&c, key, NULL);
			} else {
				r = -EINVAL;
			}
		} else {
			r = -EINVAL;
		}
	}
	free(c.sub);
	free(c.emitted);
	if (r < 0) {
		free(c.out.p);
		free(c.worktree);
		return NULL;
	}
	*sha256 = c.sha256;
	if (worktree)
		*worktree = c.worktree;
	else
		free(c.worktree);
	return c.out.p;
}

/* ---- the index ----------------------------------------------------------- */

#define CE_EXTENDED 0x4000
#define CE_STAGEMASK 0x3000
#define CE_SKIP_WORKTREE 0x4000 /* in the extended flags */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	buf_add(b, x, 2);
}

/* A stage-0 entry of the project's index, for sync. */
struct host_ent {
	char *name;
	const uint8_t *fixed; /* its stat data and object name, in the index read */
	bool skip;            /* it has the skip-worktree bit */
};

/* What an index rewrite does to each stage-0 file entry. */
struct index_op {
	const struct policy *policy;
	bool set;               /* true: set the bit on unreadable paths; false: clear it */
	const char *prefix;     /* the worktree's place in the project: "" or "dir/" */
	struct host_ent *host;  /* when clearing: the project's entries, sorted by name */
	size_t nhost;
	struct host_ent **collect; /* if not NULL: gather the entries here */
	size_t *ncollect;
};

/* The last directory unreadable() looked at: an index lists the
 * entries of one directory together. */
struct dir_memo {
	char *dir;
	bool hidden;
};

/* Can the sandbox not read path (a tracked file of a repository):
 * hidden itself or below a hidden directory, or view only? */
static bool unreadable(const struct policy *pol, const char *path, struct dir_memo *memo)
{
	struct decision d;
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	if (!memo->dir || strlen(memo->dir) != dlen || memcmp(memo->dir, path, dlen) != 0) {
		free(memo->dir);
		memo->dir = xstrndup(path, dlen);
		memo->hidden = false;
		/* each directory on the way, the last one included */
		for (size_t i = 1; i <= dlen && !memo->hidden; i++) {
			if (i < dlen && memo->dir[i] != '/')
				continue;
			char c = memo->dir[i];
			memo->dir[i] = '\0';
			policy_decide(pol, memo->dir, true, &d);
			memo->dir[i] = c;
			memo->hidden = d.level == LEVEL_NONE && !d.traversable;
		}
	}
	if (memo->hidden)
		return true;
	policy_decide(pol, path, false, &d);
	return d.level < LEVEL_READ;
}

static int cmp_host(const void *a, const void *b)
{
	return strcmp(((const struct host_ent *)a)->name, ((const struct host_ent *)b)->name);
}

static void host_free(struct host_ent *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(h[i].name);
	free(h);
}

/* Rewrite index [in, in + len) (object names hashlen bytes long) as op
 * says into *out; *entries_end (if not NULL) gets the length of its
 * header and entries.  When clearing, an entry naming the same object
 * as the project's entry of that path takes the project's stat data:
 * the sandbox's describe the view, and git on the host would read every
 * such file again to find it unchanged.  Returns 1 if anything changed,
 * 0 if not, -EINVAL if it cannot be parsed, -ENOTSUP for a split index. */
static int index_rewrite(const uint8_t *in, size_t len, size_t hashlen, const struct index_op *op,
			 struct buf *out, size_t *entries_end)
{
	if (len < 12 + hashlen || memcmp(in, "DIRC", 4) != 0)
		return -EINVAL;
	uint32_t ver = be32(in + 4), n = be32(in + 8);
	if (ver < 2 || ver > 4)
		return -EINVAL;
	const size_t end = len - hashlen, fixed = 40 + hashlen;
	size_t p = 12;
	bool changed = false, extended = false;
	struct buf prev = { 0 };
	struct dir_memo memo = { 0 };
	int r = 0;
	buf_add(out, in, 12);
	buf_add(&prev, "", 0);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		if (p + fixed + 2 > end) {
			r = -EINVAL;
			break;
		}
		uint16_t flags = be16(in + p + fixed), f2 = 0;
		size_t at = p + fixed + 2;
		if (flags & CE_EXTENDED) {
			if (ver < 3 || at + 2 > end) {
				r = -EINVAL;
				break;
			}
			f2 = be16(in + at);
			at += 2;
		}
		/* the name: v4 strips a prefix of the previous one */
		size_t name_at = at, name_len, next;
		if (ver == 4) {
			size_t q = at;
			if (q >= end) {
				r = -EINVAL;
				break;
			}
			uint64_t strip = in[q] & 127;
			while (in[q++] & 128) {
				if (q >= end || strip > (1u << 24)) {
					r = -EINVAL;
					break;
				}
				strip = ((strip + 1) << 7) | (in[q] & 127);
			}
			if (r < 0)
				break;
			const uint8_t *nul = memchr(in + q, 0, end - q);
			if (!nul || strip > prev.len) {
				r = -EINVAL;
				break;
			}
			prev.len -= strip;
			buf_add(&prev, in + q, (size_t)(nul - (in + q)));
			name_len = (size_t)(nul - (in + name_at)) + 1; /* varint, suffix, NUL */
			next = (size_t)(nul - in) + 1;
		} else {
			const uint8_t *nul = memchr(in + at, 0, end - at);
			if (!nul) {
				r = -EINVAL;
				break;
			}
			name_len = (size_t)(nul - (in + at));
			next = p + ((fixed + 2 + (at - p - fixed - 2) + name_len + 8) & ~(size_t)7);
			if (next > end) {
				r = -EINVAL;
				break;
			}
			prev.len = 0;
			buf_add(&prev, in + at, name_len);
		}
		uint32_t mode = be32(in + p + 24);
		uint16_t nf2 = f2;
		const uint8_t *stat_from = in + p;
		if ((flags & CE_STAGEMASK) == 0 && !S_ISDIR(mode)) {
			autofree char *full = xasprintf("%s%s", op->prefix ? op->prefix : "", prev.p);
			bool hide = unreadable(op->policy, full, &memo);
			struct host_ent key = { .name = prev.p }, *h = NULL;
			if (op->host)
				h = bsearch(&key, op->host, op->nhost, sizeof(*h), cmp_host);
			if (op->set && hide)
				nf2 |= CE_SKIP_WORKTREE;
			else if (!op->set && hide && (f2 & CE_SKIP_WORKTREE) && !(h && h->skip))
				nf2 &= (uint16_t)~CE_SKIP_WORKTREE;
			if (op->collect) {
				*op->collect = xrealloc(*op->collect,
							(*op->ncollect + 1) * sizeof(**op->collect));
				(*op->collect)[(*op->ncollect)++] = (struct host_ent){
					.name = xstrdup(prev.p), .fixed = in + p,
					.skip = (f2 & CE_SKIP_WORKTREE) != 0,
				};
			}
			stat_from = h && memcmp(h->fixed + 40, in + p + 40, hashlen) == 0 &&
						    memcmp(h->fixed + 24, in + p + 24, 4) == 0
					    ? h->fixed
					    : in + p;
		}
		changed |= nf2 != f2 || memcmp(stat_from, in + p, 40) != 0;
		/* git writes the extended flags only when one is set */
		uint16_t nflags = nf2 ? (uint16_t)(flags | CE_EXTENDED)
			       : nf2 != f2 ? (uint16_t)(flags & ~CE_EXTENDED) : flags;
		extended |= (nflags & CE_EXTENDED) != 0;
		buf_add(out, stat_from, 40);
		buf_add(out, in + p + 40, hashlen);
		put16(out, nflags);
		if (nflags & CE_EXTENDED)
			put16(out, nf2);
		if (ver == 4) {
			buf_add(out, in + name_at, name_len);
		} else {
			size_t head = fixed + 2 + ((nflags & CE_EXTENDED) ? 2 : 0);
			size_t total = (head + name_len + 8) & ~(size_t)7;
			static const uint8_t zeros[8];
			buf_add(out, in + name_at, name_len);
			buf_add(out, zeros, total - head - name_len);
		}
		p = next;
	}
	free(prev.p);
	free(memo.dir);
	if (entries_end)
		*entries_end = out->len;
	/* the extensions: a split index is not ours to rewrite; the entry
	 * offsets of EOIE and IEOT would be wrong, and they are optional */
	while (r == 0 && p < end) {
		if (p + 8 > end) {
			r = -EINVAL;
			break;
		}
		uint32_t sz = be32(in + p + 4);
		if (sz > end - p - 8) {
			r = -EINVAL;
			break;
		}
		if (memcmp(in + p, "link", 4) == 0)
			r = -ENOTSUP;
		else if (!changed || (memcmp(in + p, "EOIE", 4) != 0 && memcmp(in + p, "IEOT", 4) != 0))
			buf_add(out, in + p, 8 + sz);
		p += 8 + sz;
	}
	if (r < 0)
		return r;
	if (!changed) {
		buf_add(out, in + end, hashlen);
		return 0;
	}
	if (ver == 2 && extended)
		out->p[7] = 3;
	else if (ver == 3 && !extended)
		out->p[7] = 2;
	uint8_t sum[SHA256_DIGEST_LEN] = { 0 };
	static const uint8_t none[SHA256_DIGEST_LEN];
	/* index.skipHash writes no checksum: keep none */
	if (memcmp(in + end, none, hashlen) != 0) {
		if (hashlen == SHA1_DIGEST_LEN) {
			struct sha1 c;
			sha1_init(&c);
			sha1_update(&c, out->p, out->len);
			sha1_final(&c, sum);
		} else {
			struct sha256 c;
			sha256_init(&c);
			sha256_update(&c, out->p, out->len);
			sha256_final(&c, sum);
		}
	}
	buf_add(out, sum, hashlen);
	return 1;
}

/* ---- the record of what was made ---------------------------------------- */

/* One line of the record: "HEX\tHASHLEN\tPATH\tPREFIX", path and prefix
 * escaped (delta_escape() turns a tab into "\t"). */
struct made {
	char hex[SHA256_HEX_LEN + 1]; /* SHA-256 of the content made */
	size_t hashlen;               /* the repository's object name length */
	char *prefix;                 /* where its worktree is, "" or "dir/" */
};

/* The record of path: true with *m filled (free m->prefix), or false. */
static bool made_get(const struct delta *d, const char *path, struct made *m)
{
	autofree char *text = NULL;
	size_t len;
	struct stat st;
	if (read_file(delta_dir_fd(d), MADE_FILE, MAX_CONFIG, &text, &len, &st) < 0)
		return false;
	autofree char *want = delta_escape(path);
	for (char *line = text, *next; *line; line = next) {
		char *nl = strchrnul(line, '\n');
		next = *nl ? nl + 1 : nl;
		*nl = '\0';
		char *f[4], *save = NULL;
		size_t n = 0;
		for (char *t = strtok_r(line, "\t", &save); t && n < 4; t = strtok_r(NULL, "\t", &save))
			f[n++] = t;
		if (n < 3 || strlen(f[0]) != SHA256_HEX_LEN || strcmp(f[2], want) != 0)
			continue;
		memcpy(m->hex, f[0], sizeof(m->hex));
		m->hashlen = strcmp(f[1], "32") == 0 ? SHA256_DIGEST_LEN : SHA1_DIGEST_LEN;
		m->prefix = n == 4 ? delta_unescape(f[3]) : xstrdup("");
		if (!m->prefix)
			m->prefix = xstrdup("");
		return true;
	}
	return false;
}

/* Record that the delta made path with content data.  Returns 0 or -errno. */
static int made_add(struct delta *d, const char *path, const void *data, size_t len,
		    size_t hashlen, const char *prefix)
{
	autofree char *text = NULL;
	size_t tlen = 0;
	struct stat st;
	if (read_file(delta_dir_fd(d), MADE_FILE, MAX_CONFIG, &text, &tlen, &st) < 0)
		text = xstrdup("");
	char hex[SHA256_HEX_LEN + 1];
	hash_hex(data, len, hex);
	autofree char *e = delta_escape(path);
	autofree char *ep = delta_escape(prefix);
	autofree char *all = xasprintf("%s%s\t%zu\t%s\t%s\n", text, hex, hashlen, e, ep);
	return write_file(delta_dir_fd(d), MADE_FILE, all, strlen(all), 0600, NULL);
}

/* Is upper file path still what the record says was made? */
static bool made_untouched(struct delta *d, const char *path)
{
	struct made m;
	if (!made_get(d, path, &m))
		return false;
	free(m.prefix);
	autofree char *old = NULL;
	size_t olen;
	struct stat ost;
	if (read_file(delta_upper_fd(d), path, MAX_INDEX, &old, &olen, &ost) < 0)
		return false;
	char now[SHA256_HEX_LEN + 1];
	hash_hex(old, olen, now);
	return strcmp(m.hex, now) == 0;
}

/* ---- preparing ----------------------------------------------------------- */

static bool readable(const struct policy *pol, const char *path, bool is_dir)
{
	struct decision d;
	policy_decide(pol, path, is_dir, &d);
	return d.level >= LEVEL_READ;
}

/* Open project directory path (relative, several components) under
 * project_fd, never through a symbolic link.  Returns an fd or -errno. */
static int open_beneath(int project_fd, const char *path)
{
	int fd = openat(project_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	autofree char *copy = xstrdup(path);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c && fd >= 0; c = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		fd = next;
		errno = e;
	}
	return fd < 0 ? -errno : fd;
}

/* The upper directory of project directory path (relative, "" for the
 * root), made with the project's modes and times where missing.
 * Returns an fd or -errno (-ENOTDIR: the delta has something else
 * there). */
static int upper_dir(struct delta *d, int project_fd, const char *path)
{
	int ufd = openat(delta_upper_fd(d), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int pfd = openat(project_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	autofree char *copy = xstrdup(path);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c && ufd >= 0 && pfd >= 0;
	     c = strtok_r(NULL, "/", &save)) {
		int np = openat(pfd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		int e = np < 0 ? errno : 0;
		if (np >= 0 && fstat(np, &st) < 0)
			e = errno;
		/* ours to fill, whatever the project's mode */
		if (!e && mkdirat(ufd, c, (st.st_mode & 07777) | S_IRWXU) < 0 && errno != EEXIST)
			e = errno;
		int nu = e ? -1 : openat(ufd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (!e && nu < 0)
			e = errno == ELOOP ? ENOTDIR : errno;
		if (nu >= 0) {
			const struct timespec t[2] = { st.st_atim, st.st_mtim };
			(void)futimens(nu, t); /* only what the sandbox sees of it */
		}
		close(ufd);
		close(pfd);
		if (np >= 0 && e)
			close(np);
		ufd = nu;
		pfd = e ? -1 : np;
		if (e) {
			errno = e;
			break;
		}
	}
	int e = errno;
	if (pfd >= 0)
		close(pfd);
	if (ufd < 0)
		return -e;
	return ufd;
}

/* Put data in the delta as project file path (dir/name), with the
 * project file's mode (mode 0: its own) and times, recorded as made.
 * Returns 0 or -errno. */
static int make_file(struct delta *d, int project_fd, const char *dir, const char *name,
		     const void *data, size_t len, mode_t mode, const struct stat *pst,
		     size_t hashlen, const char *prefix)
{
	autofree char *path = xasprintf("%s/%s", dir, name);
	autoclose int ufd = upper_dir(d, project_fd, dir);
	if (ufd < 0)
		return ufd;
	const struct timespec t[2] = { pst->st_atim, pst->st_mtim };
	int r = made_add(d, path, data, len, hashlen, prefix);
	if (r == 0)
		r = write_file(ufd, name, data, len, mode ? mode : pst->st_mode, t);
	return r;
}

static bool upper_has(struct delta *d, const char *path)
{
	struct stat st;
	return fstatat(delta_upper_fd(d), path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Show the cleaned configuration file gdir/name, if the policy hides it;
 * *hashlen and *worktree (if not NULL) as config_clean() says.  Returns
 * 0 or -errno (writing it failed). */
static int prep_config(struct delta *d, int project_fd, const struct policy *pol,
		       const char *gdir, const char *name, size_t *hashlen, char **worktree)
{
	autofree char *path = xasprintf("%s/%s", gdir, name);
	autofree char *text = NULL;
	size_t len;
	struct stat st;
	autoclose int pdir = open_beneath(project_fd, gdir);
	if (pdir < 0 || read_file(pdir, name, MAX_CONFIG, &text, &len, &st) < 0)
		return 0; /* none, or not one git would read either */
	bool is256 = false;
	autofree char *clean = config_clean(text, len, &is256, worktree);
	if (hashlen)
		*hashlen = is256 ? SHA256_DIGEST_LEN : SHA1_DIGEST_LEN;
	if (!clean || readable(pol, path, false))
		return 0; /* malformed: git fails on the host too; readable: as it is */
	if (upper_has(d, path)) {
		/* a delta resumed: show it again if it is still ours */
		if (made_untouched(d, path))
			delta_add_shown(d, path);
		return 0;
	}
	int r = make_file(d, project_fd, gdir, name, clean, strlen(clean), 0444, &st, 0, "");
	if (r < 0)
		return r;
	delta_add_shown(d, path);
	return 0;
}

/* Mark the paths the sandbox cannot read skip-worktree in the index of
 * git directory gdir, whose worktree is at prefix.  Returns 0 or -errno
 * (writing it failed). */
static int prep_index(struct delta *d, int project_fd, const struct policy *pol,
		      const char *gdir, const char *prefix, size_t hashlen)
{
	autofree char *path = xasprintf("%s/index", gdir);
	if (!readable(pol, path, false) || upper_has(d, path))
		return 0;
	autofree char *in = NULL;
	size_t len;
	struct stat st;
	autoclose int pdir = open_beneath(project_fd, gdir);
	if (pdir < 0 || read_file(pdir, "index", MAX_INDEX, &in, &len, &st) < 0)
		return 0;
	struct index_op op = { .policy = pol, .set = true, .prefix = prefix };
	struct buf out = { 0 };
	int r = index_rewrite((const uint8_t *)in, len, hashlen, &op, &out, NULL);
	if (r > 0) {
		r = make_file(d, project_fd, gdir, "index", out.p, out.len, 0, &st, hashlen, prefix);
		if (r == 0)
			delta_note_base(d, path, &st);
	} else {
		r = 0; /* nothing hidden is tracked, or not ours to rewrite */
	}
	free(out.p);
	return r;
}

/* The linked worktrees of the repository whose checkouts are in the
 * project: their '.git' file says where their git directory is on the
 * host, which the sandbox does not see; show it the same directory by a
 * relative path, and prepare their index.  Returns 0 or -errno. */
static int prep_worktrees(struct delta *d, int project_fd, const char *project_path,
			  const struct policy *pol, size_t hashlen)
{
	autoclose int wfd = open_beneath(project_fd, ".git/worktrees");
	char **names;
	if (wfd < 0 || !project_path || delta_list_dir(wfd, &names) < 0)
		return 0;
	size_t plen = strlen(project_path);
	int r = 0;
	for (size_t i = 0; names[i] && r == 0; i++) {
		autofree char *gdir = xasprintf(".git/worktrees/%s", names[i]);
		autofree char *head = xasprintf("%s/HEAD", gdir);
		autoclose int gfd = openat(wfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		autofree char *where = NULL;
		size_t wlen;
		struct stat st;
		if (gfd < 0 || !readable(pol, head, false) ||
		    read_file(gfd, "gitdir", PATH_MAX, &where, &wlen, &st) < 0)
			continue;
		/* "/project/sub/wt/.git\n": the worktree at "sub/wt" */
		where[strcspn(where, "\n")] = '\0';
		size_t n = strlen(where);
		if (strncmp(where, project_path, plen) != 0 || where[plen] != '/' || n < plen + 6 ||
		    strcmp(where + n - 5, "/.git") != 0 || strstr(where, "/../") || strstr(where, "/./"))
			continue;
		autofree char *wt = xstrndup(where + plen + 1, n - plen - 6);
		autofree char *gitfile = xasprintf("%s/.git", wt);
		autofree char *prefix = xasprintf("%s/", wt);
		struct stat gst;
		autoclose int wtfd = open_beneath(project_fd, wt);
		if (wtfd < 0 || fstatat(wtfd, ".git", &gst, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(gst.st_mode) || !readable(pol, gitfile, false))
			continue;
		if (!upper_has(d, gitfile)) {
			struct buf up = { 0 };
			for (const char *c = wt; c; c = strchr(c + 1, '/'))
				buf_str(&up, "../");
			autofree char *text = xasprintf("gitdir: %s%s\n", up.p, gdir);
			free(up.p);
			r = make_file(d, project_fd, wt, ".git", text, strlen(text), 0, &gst, 0, "");
		}
		if (r == 0)
			r = prep_config(d, project_fd, pol, gdir, "config.worktree", NULL, NULL);
		if (r == 0)
			r = prep_index(d, project_fd, pol, gdir, prefix, hashlen);
	}
	delta_free_names(names);
	return r;
}

/* The worktree of git directory gdir whose core.worktree says rel: a
 * project path (malloc'd, "sub" for "../../../sub" of
 * ".git/modules/sub"), or NULL if it leaves the project or is in .git. */
static char *module_worktree(const char *gdir, const char *rel)
{
	if (rel[0] == '/')
		return NULL;
	autofree char *all = xasprintf("%s/%s", gdir, rel);
	char **comp = NULL;
	size_t n = 0;
	bool ok = true;
	autofree char *copy = xstrdup(all);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c && ok; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			ok = n > 0;
			if (ok)
				n--;
			continue;
		}
		comp = xrealloc(comp, (n + 1) * sizeof(*comp));
		comp[n++] = c;
	}
	char *out = NULL;
	if (ok && n > 0 && !hold_is_dotgit(comp[0])) {
		struct buf b = { 0 };
		for (size_t i = 0; i < n; i++) {
			if (i)
				buf_str(&b, "/");
			buf_str(&b, comp[i]);
		}
		out = b.p;
	}
	free(comp);
	return out;
}

/* The submodules' git directories in dir (".git/modules", then their own
 * modules/; a name with '/' is nested directories): their configuration
 * and index as the main repository's, for the worktree their
 * core.worktree names in the project.  *budget bounds the directories
 * looked at.  Returns 0 or -errno. */
static int prep_modules(struct delta *d, int project_fd, const struct policy *pol,
			const char *dir, unsigned depth, unsigned *budget)
{
	autoclose int mfd = open_beneath(project_fd, dir);
	char **names;
	if (mfd < 0 || depth > MAX_MODULE_DEPTH || delta_list_dir(mfd, &names) < 0)
		return 0;
	int r = 0;
	for (size_t i = 0; names[i] && r == 0 && *budget; i++, (*budget)--) {
		autofree char *gdir = xasprintf("%s/%s", dir, names[i]);
		autofree char *head = xasprintf("%s/HEAD", gdir);
		struct stat st;
		if (fstatat(mfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		autofree char *rel_head = xasprintf("%s/HEAD", names[i]);
		if (fstatat(mfd, rel_head, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = prep_modules(d, project_fd, pol, gdir, depth + 1, budget);
			continue;
		}
		if (!readable(pol, head, false))
			continue;
		size_t hashlen = SHA1_DIGEST_LEN;
		autofree char *wt = NULL;
		r = prep_config(d, project_fd, pol, gdir, "config", &hashlen, &wt);
		autofree char *where = wt ? module_worktree(gdir, wt) : NULL;
		if (r == 0 && where) {
			autofree char *prefix = xasprintf("%s/", where);
			r = prep_index(d, project_fd, pol, gdir, prefix, hashlen);
		}
		if (r == 0) {
			autofree char *sub = xasprintf("%s/modules", gdir);
			r = prep_modules(d, project_fd, pol, sub, depth + 1, budget);
		}
	}
	delta_free_names(names);
	return r;
}

int gitprep_prepare(struct delta *d, int project_fd, const char *project_path,
		    const struct policy *pol, struct af_err *err)
{
	if (!pol)
		return 0;
	struct decision dec;
	policy_decide(pol, ".git", true, &dec);
	struct stat st;
	if (dec.level < LEVEL_READ || !readable(pol, ".git/HEAD", false) ||
	    fstatat(project_fd, ".git", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	size_t hashlen = SHA1_DIGEST_LEN;
	int r = prep_config(d, project_fd, pol, ".git", "config", &hashlen, NULL);
	if (r == 0)
		r = prep_config(d, project_fd, pol, ".git", "config.worktree", NULL, NULL);
	if (r == 0)
		r = prep_index(d, project_fd, pol, ".git", "", hashlen);
	if (r == 0)
		r = prep_worktrees(d, project_fd, project_path, pol, hashlen);
	unsigned budget = MAX_MODULES;
	if (r == 0)
		r = prep_modules(d, project_fd, pol, ".git/modules", 0, &budget);
	/* a resumed delta where the sandbox replaced a directory: nothing to show */
	if (r == -ENOTDIR)
		return 0;
	if (r < 0)
		return af_err_set(err, -r, "cannot prepare the repository's view in '%s': %s",
				  delta_path(d), strerror(-r));
	return 0;
}

/* ---- sync ---------------------------------------------------------------- */

bool gitprep_sync(struct delta *d, int ufd, int pfd, const char *name, const char *path,
		  const struct policy *pol)
{
	if (strcmp(name, "config") != 0 && strcmp(name, "config.worktree") != 0 &&
	    strcmp(name, "index") != 0 && strcmp(name, ".git") != 0)
		return false;
	struct made m;
	if (!made_get(d, path, &m))
		return false;
	autofree char *prefix = m.prefix;
	autofree char *up = NULL;
	size_t ulen;
	struct stat ust;
	if (read_file(ufd, name, MAX_INDEX, &up, &ulen, &ust) < 0)
		return false;
	char now[SHA256_HEX_LEN + 1];
	hash_hex(up, ulen, now);
	if (strcmp(m.hex, now) == 0)
		return true; /* made by us, left as it was */
	if (strcmp(name, "index") != 0 || !pol)
		return false;

	/* the sandbox's index: the bits we set go, those the project has stay */
	autofree char *pidx = NULL;
	size_t plen = 0;
	struct stat pst;
	struct host_ent *host = NULL;
	size_t nhost = 0, pend = 0, uend = 0;
	if (read_file(pfd, "index", MAX_INDEX, &pidx, &plen, &pst) == 0) {
		struct index_op scan = { .policy = pol, .set = true, .prefix = prefix,
					 .collect = &host, .ncollect = &nhost };
		struct buf ignore = { 0 };
		if (index_rewrite((const uint8_t *)pidx, plen, m.hashlen, &scan, &ignore, &pend) < 0)
			pend = 0;
		free(ignore.p);
		if (host)
			qsort(host, nhost, sizeof(*host), cmp_host);
	}
	struct index_op op = { .policy = pol, .set = false, .prefix = prefix, .host = host,
			       .nhost = nhost };
	struct buf out = { 0 };
	int r = index_rewrite((const uint8_t *)up, ulen, m.hashlen, &op, &out, &uend);
	host_free(host, nhost);
	/* the same entries as the project's: the sandbox only refreshed its
	 * stat data or extensions, which the project's index has for itself */
	bool same = r >= 0 && pend && uend == pend && memcmp(out.p, pidx, pend) == 0;
	if (r > 0 && !same) {
		const struct timespec t[2] = { ust.st_atim, ust.st_mtim };
		(void)write_file(ufd, name, out.p, out.len, ust.st_mode, t);
	}
	free(out.p);
	return same;
}

/* ---- for the unit tests -------------------------------------------------- */

char *gitprep_config_clean(const char *text, size_t len, bool *sha256)
{
	return config_clean(text, len, sha256, NULL);
}

int gitprep_index_mark(const void *in, size_t len, size_t hashlen, const struct policy *pol,
		       bool set, void **out, size_t *outlen)
{
	struct index_op op = { .policy = pol, .set = set };
	struct buf b = { 0 };
	int r = index_rewrite(in, len, hashlen, &op, &b, NULL);
	*out = b.p;
	*outlen = b.len;
	return r;
}
