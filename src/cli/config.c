/* config.c - the configuration file and AGENTFENSE_* variables: read,
 * checked, each value with its source (see config.h). */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "common/units.h"
#include "sandbox/reslimits.h"

static const struct {
	const char *name, *env;
} keys[CONFIG_NKEYS] = {
	[CONFIG_PRESET] = { "preset", "AGENTFENSE_PRESET" },
	[CONFIG_NET] = { "net", "AGENTFENSE_NET" },
	[CONFIG_CHANGES] = { "changes", "AGENTFENSE_CHANGES" },
	[CONFIG_TIMEOUT] = { "timeout", "AGENTFENSE_TIMEOUT" },
	[CONFIG_KILL_AFTER] = { "kill-after", "AGENTFENSE_KILL_AFTER" },
	[CONFIG_MEMORY] = { "memory", "AGENTFENSE_MEMORY" },
	[CONFIG_CPUS] = { "cpus", "AGENTFENSE_CPUS" },
	[CONFIG_PIDS] = { "pids", "AGENTFENSE_PIDS" },
	[CONFIG_DISK_LIMIT] = { "disk-limit", "AGENTFENSE_DISK_LIMIT" },
	[CONFIG_RULE] = { "rule", NULL },
	[CONFIG_BIND] = { "bind", NULL },
	[CONFIG_RO_BIND] = { "ro-bind", NULL },
	[CONFIG_TMPFS] = { "tmpfs", NULL },
};

#define CONFIG_MAX (64 << 10)

const char *config_key_name(enum config_key k)
{
	return keys[k].name;
}

const char *config_key_env(enum config_key k)
{
	return keys[k].env;
}

/* The reason alone of a limits_parse_*() error ("invalid value 'x' for
 * --pids: REASON"), which the caller words for its source.  Returns r. */
static int limit_reason(int r, struct af_err *err)
{
	const char *why = r < 0 ? strstr(err->msg, ": ") : NULL;
	if (why)
		memmove(err->msg, why + 2, strlen(why + 2) + 1);
	return r < 0 ? -EINVAL : 0;
}

/* Whether value v is good for key k; else a reason in err->msg.
 * Returns 0 or -EINVAL. */
static int check_value(enum config_key k, const char *v, struct af_err *err)
{
	double d;
	uint64_t u64;
	uint32_t u32;
	switch (k) {
	case CONFIG_NET:
		if (strcmp(v, "none") && strcmp(v, "host"))
			return af_err_set(err, EINVAL, "expected none or host");
		return 0;
	case CONFIG_CHANGES:
		if (strcmp(v, "sync") && strcmp(v, "discard") && strcmp(v, "keep"))
			return af_err_set(err, EINVAL, "expected sync, discard or keep");
		return 0;
	case CONFIG_TIMEOUT:
	case CONFIG_KILL_AFTER:
		if (parse_duration(v, &d) < 0 || d < 0 || (d == 0 && k == CONFIG_TIMEOUT))
			return af_err_set(err, EINVAL, "expected a duration such as 30, 30s, "
					  "1.5s, 5m or 1h");
		return 0;
	case CONFIG_MEMORY:
		return limit_reason(limits_parse_memory(v, &u64, err), err);
	case CONFIG_DISK_LIMIT:
		return limit_reason(limits_parse_disk(v, &u64, err), err);
	case CONFIG_CPUS:
		return limit_reason(limits_parse_cpus(v, &u32, err), err);
	case CONFIG_PIDS:
		return limit_reason(limits_parse_pids(v, &u32, err), err);
	case CONFIG_PRESET:
	case CONFIG_RULE:
	case CONFIG_BIND:
	case CONFIG_RO_BIND:
	case CONFIG_TMPFS:
		/* checked where they are used, naming this source */
		if (!*v)
			return af_err_set(err, EINVAL, "empty value");
		return 0;
	case CONFIG_NKEYS:
		break;
	}
	return 0;
}

static void set_value(struct config *c, enum config_key k, const char *v, char *source)
{
	struct config_value *cv;
	if (k < CONFIG_NSCALARS) {
		cv = &c->scalar[k];
		free(cv->value);
		free(cv->source);
	} else {
		c->list[k] = xrealloc(c->list[k], (c->n[k] + 1) * sizeof(*c->list[k]));
		cv = &c->list[k][c->n[k]++];
	}
	cv->value = xstrdup(v);
	cv->source = source;
}

struct parse {
	struct config *c;
	const char *text;
	size_t len, pos;
	int lineno;
	bool failed;
	struct af_err err;
};

/* inih's reader: one line at a time, counted for the messages. */
static char *reader(char *buf, int size, void *arg)
{
	struct parse *ps = arg;
	if (ps->pos >= ps->len)
		return NULL;
	const char *s = ps->text + ps->pos;
	const char *nl = memchr(s, '\n', ps->len - ps->pos);
	size_t n = nl ? (size_t)(nl - s) + 1 : ps->len - ps->pos;
	ps->pos += n;
	ps->lineno++;
	if (n >= (size_t)size)
		n = (size_t)size - 1; /* inih refuses what does not fit */
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

static int on_key(void *arg, const char *section, const char *name, const char *value)
{
	struct parse *ps = arg;
	struct af_err e = { 0 };
	if (ps->failed)
		return 1;
	if (strcmp(section, "run") != 0) {
		af_err_usage(&ps->err, EINVAL, "invalid config '%s' line %d: unknown section "
			     "'[%s]'", ps->c->path, ps->lineno, section);
		af_err_hint(&ps->err, "the defaults of run and shell go under [run]");
		ps->failed = true;
		return 1;
	}
	for (int k = 0; k < CONFIG_NKEYS; k++) {
		if (strcmp(name, keys[k].name) != 0)
			continue;
		if (check_value((enum config_key)k, value, &e) < 0) {
			af_err_usage(&ps->err, EINVAL, "invalid config '%s' line %d: invalid value "
				     "'%s' for %s: %s", ps->c->path, ps->lineno, value, name, e.msg);
			ps->failed = true;
			return 1;
		}
		set_value(ps->c, (enum config_key)k, value,
			  xasprintf("%s:%d", ps->c->path, ps->lineno));
		return 1;
	}
	af_err_usage(&ps->err, EINVAL, "invalid config '%s' line %d: unknown key '%s'",
		     ps->c->path, ps->lineno, name);
	af_err_hint(&ps->err, "keys: preset, rule, net, changes, timeout, kill-after, memory, "
			      "cpus, pids, disk-limit, bind, ro-bind, tmpfs");
	ps->failed = true;
	return 1;
}

static void no_multiline(void)
{
	ini_allow_multiline = false;
}

/* Read the file into c (absent: nothing).  Returns 0 or -errno. */
static int load_file(struct config *c, struct af_err *err)
{
	autoclose int fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return af_err_usage(err, errno, "cannot read config '%s': %s", c->path,
				    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return af_err_usage(err, EINVAL, "cannot read config '%s': not a regular file",
				    c->path);
	c->found = true;
	autofree char *text = xmalloc(CONFIG_MAX + 1);
	ssize_t len = read_full(fd, text, CONFIG_MAX + 1);
	if (len < 0)
		return af_err_usage(err, (int)-len, "cannot read config '%s': %s", c->path,
				    strerror((int)-len));
	if (len > CONFIG_MAX)
		return af_err_usage(err, EFBIG, "cannot read config '%s': larger than 64 KiB",
				    c->path);
	text[len] = '\0';
	struct parse ps = { .c = c, .text = text, .len = (size_t)len };
	/* as in policy files: every line stands on its own */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, no_multiline);
	int r = ini_parse_stream(reader, &ps, on_key, &ps);
	if (ps.failed) {
		*err = ps.err;
		return -err->errnum;
	}
	if (r == -2)
		return af_err_set(err, ENOMEM, "cannot parse config '%s': out of memory", c->path);
	if (r != 0) {
		af_err_usage(err, EINVAL, "invalid config '%s' line %d: expected '[run]' or "
			     "'KEY = VALUE'", c->path, r);
		return -EINVAL;
	}
	return 0;
}

int config_load(struct config *c, struct af_err *err)
{
	struct af_err no_home = { 0 };
	int r;

	memset(c, 0, sizeof(*c));
	c->path = xdg_dir("XDG_CONFIG_HOME", ".config", "agentfense/config.ini",
			  "configuration directory", &no_home);
	if (c->path && (r = load_file(c, err)) < 0) {
		config_free(c);
		return r;
	}
	for (int k = 0; k < CONFIG_NSCALARS; k++) {
		const char *v = getenv(keys[k].env);
		struct af_err e = { 0 };
		if (!v)
			continue;
		if (check_value((enum config_key)k, v, &e) < 0) {
			r = af_err_usage(err, EINVAL, "invalid value '%s' for %s: %s", v,
					 keys[k].env, e.msg);
			config_free(c);
			return r;
		}
		set_value(c, (enum config_key)k, v, xstrdup(keys[k].env));
	}
	return 0;
}

AF_NORETURN void config_error(const struct af_err *err, const struct config_value *v)
{
	print_err(err);
	hint_msg("the value comes from %s", v->source);
	exit(AF_EXIT_USAGE);
}

void config_policy_options(const struct config *c, struct policy_options *po)
{
	const struct config_value *preset = &c->scalar[CONFIG_PRESET];
	struct af_err err = { 0 };

	if (preset->value && !po->preset) {
		autofree char *text = NULL, *src = NULL;
		if (preset_load(preset->value, &text, &src, &err) < 0)
			config_error(&err, preset);
		po->default_preset = preset->value;
	}
	struct policy_opt *cli = po->items;
	int n = po->n;
	po->items = NULL;
	po->n = 0;
	for (size_t i = 0; i < c->n[CONFIG_RULE]; i++)
		policy_options_add_rule(po, c->list[CONFIG_RULE][i].value,
					c->list[CONFIG_RULE][i].source);
	for (int i = 0; i < n; i++)
		policy_options_add(po, cli[i].kind, cli[i].arg);
	free(cli);
}

void config_free(struct config *c)
{
	for (int k = 0; k < CONFIG_NKEYS; k++) {
		if (k < CONFIG_NSCALARS) {
			free(c->scalar[k].value);
			free(c->scalar[k].source);
			continue;
		}
		for (size_t i = 0; i < c->n[k]; i++) {
			free(c->list[k][i].value);
			free(c->list[k][i].source);
		}
		free(c->list[k]);
	}
	free(c->path);
	memset(c, 0, sizeof(*c));
}
