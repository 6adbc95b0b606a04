/* policyfile.c - INI policy files and preset files (format in
 * agentfense-policy(5)), parsed with inih.
 *
 * inih frames the text (sections, comments, a BOM), but it splits a
 * key at the first '=' or ':' and cuts lines longer than its buffer
 * into pieces that it then parses as lines of their own.  So the text
 * reaches inih through our own reader, which keeps the raw current line,
 * refuses over-long lines and checks section headers; each rule line is
 * then split from its raw text at the LAST '=' (a level never holds '='),
 * which lets patterns contain ':' and '='. */
#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct pending {
	char *pattern, *value;
	int line;
};

struct ini_state {
	struct policy *p;
	const char *label;
	bool is_preset;
	const char *text;
	size_t len, pos;
	int lineno;
	char line[256]; /* the raw current line: longer ones are refused */
	bool failed;
	int err_line;
	struct af_err err;
	char *description;
	struct pending *rules; /* policy files: added after their presets */
	size_t nrules;
	struct pending *presets;
	size_t npresets;
};

static int st_fail(struct ini_state *st, const char *hint, const char *fmt, ...) AF_PRINTF(3, 4);
static int st_fail(struct ini_state *st, const char *hint, const char *fmt, ...)
{
	char msg[sizeof(st->err.msg)];
	char q[256];
	va_list ap;
	if (st->failed)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->failed = true;
	st->err_line = st->lineno;
	af_err_usage(&st->err, EINVAL, "invalid %s '%s' line %d: %s",
		     st->is_preset ? "preset" : "policy", policy_quote(q, sizeof(q), st->label),
		     st->lineno, msg);
	if (hint)
		af_err_hint(&st->err, "%s", hint);
	return 0;
}

static char *skip_blank(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/* The sections each kind of file may hold. */
static bool section_known(const struct ini_state *st, const char *name)
{
	return strcmp(name, "rules") == 0 ||
	       strcmp(name, st->is_preset ? "preset" : "policy") == 0;
}

/* Section header check on the raw line: inih would silently take
 * "[Bb]uild/ = none" for a section named "Bb". */
static bool check_header(struct ini_state *st, char *s)
{
	char q[256];
	char *end = strchr(s, ']');
	char *after = end ? skip_blank(end + 1) : NULL;
	if (!end || (*after && *after != ';' && *after != '#')) {
		st_fail(st,
			"write '**/[...' for a pattern starting with a bracket expression, "
			"or '\\[' for a literal '['",
			"a line starting with '[' must be a section header");
		return false;
	}
	*end = '\0';
	char *name = skip_blank(s + 1);
	rstrip(name);
	if (!section_known(st, name)) {
		st_fail(st, st->is_preset ? "sections are [preset] and [rules]"
					  : "sections are [policy] and [rules]",
			"unknown section '[%s]'", policy_quote(q, sizeof(q), name));
		return false;
	}
	return true;
}

/* inih's fgets: one line at a time from the text, remembered raw. */
static char *reader(char *str, int num, void *stream)
{
	struct ini_state *st = stream;
	if (st->failed || st->pos >= st->len)
		return NULL;
	const char *b = st->text + st->pos;
	const char *nl = memchr(b, '\n', st->len - st->pos);
	size_t n = nl ? (size_t)(nl - b) : st->len - st->pos;
	st->pos += n + (nl ? 1 : 0);
	st->lineno++;
	if (n && b[n - 1] == '\r')
		n--;
	size_t max = (size_t)num - 2; /* room for '\n' and NUL */
	if (max > sizeof(st->line) - 1)
		max = sizeof(st->line) - 1;
	if (n > max) {
		st_fail(st, "give a longer pattern with --rule", "line longer than %zu characters",
			max);
		return NULL;
	}
	memcpy(st->line, b, n);
	st->line[n] = '\0';
	char *s = st->line;
	if (st->lineno == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s = skip_blank(s);
	if (*s == '[' && !check_header(st, s))
		return NULL;
	memcpy(str, b, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/* Cut an inline comment: ';' or '#' after a blank, as inih does. */
static void cut_comment(char *s)
{
	for (char *c = s; *c; c++)
		if ((*c == ';' || *c == '#') && c > s && (c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			return;
		}
}

static int on_key(void *user, const char *section, const char *name AF_UNUSED,
		  const char *value AF_UNUSED)
{
	struct ini_state *st = user;
	char q[256];
	if (st->failed)
		return 0;

	char *s = st->line;
	if (st->lineno == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s = skip_blank(s);
	cut_comment(s);
	bool rules = strcmp(section, "rules") == 0;
	char *sep = rules ? strrchr(s, '=') : strchr(s, '=');
	if (!sep)
		sep = strchr(s, ':');
	if (!sep)
		return st_fail(st, NULL, "expected 'KEY = VALUE'");
	*sep = '\0';
	char *val = sep + 1;

	if (rules) {
		if (!st->is_preset) {
			st->rules = xrealloc(st->rules, (st->nrules + 1) * sizeof(*st->rules));
			st->rules[st->nrules++] = (struct pending){ xstrdup(s), xstrdup(val),
								    st->lineno };
			return 1;
		}
		autofree char *origin = xasprintf("preset %s", st->label);
		struct af_err e = { 0 };
		if (policy_add_value(st->p, s, val, origin, &e) < 0)
			return st_fail(st, e.hint[0] ? e.hint : NULL, "%s", e.msg);
		return 1;
	}
	rstrip(s);
	if (!*section)
		return st_fail(st, "put rules under a [rules] section",
			       "'%s' is outside any section", policy_quote(q, sizeof(q), s));
	val = skip_blank(val);
	rstrip(val);
	if (strcasecmp(s, "description") == 0) {
		free(st->description);
		st->description = xstrdup(val);
	} else if (!st->is_preset && strcasecmp(s, "preset") == 0) {
		if (!*val)
			return st_fail(st, NULL, "empty preset name");
		st->presets = xrealloc(st->presets, (st->npresets + 1) * sizeof(*st->presets));
		st->presets[st->npresets++] = (struct pending){ xstrdup(val), NULL, st->lineno };
	} else {
		return st_fail(st,
			       st->is_preset ? "[preset] has the key description"
					     : "[policy] has the keys preset and description",
			       "unknown key '%s' in [%s]", policy_quote(q, sizeof(q), s), section);
	}
	return 1;
}

static void pending_free(struct pending *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].pattern);
		free(v[i].value);
	}
	free(v);
}

/* Apply a policy file's presets, then its rules, in file order. */
static int apply_pending(struct ini_state *st)
{
	for (size_t i = 0; i < st->npresets; i++) {
		struct af_err e = { 0 };
		st->lineno = st->presets[i].line;
		if (policy_add_preset(st->p, st->presets[i].pattern, &e) < 0) {
			st_fail(st, e.hint[0] ? e.hint : NULL, "%s", e.msg);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < st->nrules; i++) {
		struct af_err e = { 0 };
		st->lineno = st->rules[i].line;
		autofree char *origin = xasprintf("%s:%d", st->label, st->lineno);
		if (policy_add_value(st->p, st->rules[i].pattern, st->rules[i].value, origin, &e) < 0) {
			st_fail(st, e.hint[0] ? e.hint : NULL, "%s", e.msg);
			return -EINVAL;
		}
	}
	return 0;
}

/* libinih's multiline flag is the library's, shared by the process:
 * written once, so that parses in several threads never race on it. */
static void no_multiline(void)
{
	ini_allow_multiline = false;
}

int policy_parse_ini(struct policy *p, const char *text, const char *label, bool is_preset,
		     char **description, struct af_err *err)
{
	struct ini_state st = { .p = p, .label = label, .is_preset = is_preset, .text = text,
				.len = strlen(text) };
	int ret = 0;

	/* continuation lines would glue an indented rule onto the key
	 * above it; every line stands on its own here */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, no_multiline);
	int r = ini_parse_stream(reader, &st, on_key, &st);
	if (r == -2) {
		ret = af_err_set(err, ENOMEM, "cannot parse '%s': out of memory", label);
		goto out;
	}
	if (r > 0 && (!st.failed || r < st.err_line)) {
		st.failed = false;
		st.lineno = r;
		st_fail(&st, "write 'PATTERN = LEVEL[@PRIORITY]' under [rules]",
			"expected '[SECTION]' or 'KEY = VALUE'");
	}
	if (!st.failed && !is_preset)
		apply_pending(&st);
	if (st.failed) {
		if (err)
			*err = st.err;
		ret = -EINVAL;
		goto out;
	}
	if (description)
		*description = steal_pointer(&st.description);
out:
	free(st.description);
	pending_free(st.rules, st.nrules);
	pending_free(st.presets, st.npresets);
	return ret;
}

int policy_read_file(const char *path, const char *kind, size_t max, char **out,
		     struct af_err *err)
{
	char q[256];
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	policy_quote(q, sizeof(q), path);
	if (fd < 0 || fstat(fd, &st) < 0)
		return af_err_usage(err, errno, "cannot read %s '%s': %s", kind, q, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return af_err_usage(err, EISDIR, "cannot read %s '%s': %s", kind, q, strerror(EISDIR));
	if (!S_ISREG(st.st_mode))
		return af_err_usage(err, EINVAL, "cannot read %s '%s': not a regular file", kind, q);
	if ((size_t)st.st_size > max)
		return af_err_usage(err, EFBIG, "cannot read %s '%s': larger than %zu bytes", kind, q, max);
	autofree char *buf = xmalloc((size_t)st.st_size + 1);
	ssize_t n = read_full(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return af_err_usage(err, (int)-n, "cannot read %s '%s': %s", kind, q, strerror((int)-n));
	buf[n] = '\0';
	char *nul = memchr(buf, '\0', (size_t)n);
	if (nul) {
		int line = 1;
		for (char *c = buf; c < nul; c++)
			line += *c == '\n';
		return af_err_usage(err, EINVAL, "cannot read %s '%s': NUL byte on line %d", kind, q, line);
	}
	*out = steal_pointer(&buf);
	return 0;
}

int policy_add_file(struct policy *p, const char *path, struct af_err *err)
{
	autofree char *text = NULL;
	int r = policy_read_file(path, "policy", 1 << 20, &text, err);
	if (r < 0)
		return r;
	return policy_parse_ini(p, text, path, false, NULL, err);
}
