/* preset.c - named presets: the built-in ones compiled from the presets directory
 * (preset_data.h) and the user's own in
 * $XDG_CONFIG_HOME/agentfense/presets/NAME.ini (else
 * ~/.config/agentfense/presets/NAME.ini), which shadow built-ins. */
#include "policy/policy.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/suggest.h"
#include "policy/preset_data.h"

#define PRESET_MAX_SIZE (1 << 20)
#define PRESET_NAME_MAX 64

/* A preset name becomes a file name: keep it to a safe alphabet. */
static bool name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > PRESET_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
			return false;
	return true;
}

/* The user preset directory, or NULL when neither variable helps. */
static char *user_dir(void)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && x[0] == '/') /* the XDG spec says relative values are ignored */
		return xasprintf("%s/agentfense/presets", x);
	const char *home = getenv("HOME");
	if (home && home[0] == '/')
		return xasprintf("%s/.config/agentfense/presets", home);
	return NULL;
}

static const struct builtin_preset *builtin_find(const char *name)
{
	for (const struct builtin_preset *b = builtin_presets; b->name; b++)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

bool preset_is_builtin(const char *name)
{
	return builtin_find(name) != NULL;
}

/* "a, b, c": the known presets, for hints. */
static char *names_list(void)
{
	struct preset_info *list = NULL;
	int n = preset_list(&list, NULL);
	size_t len = 1;
	for (int i = 0; i < n; i++)
		len += strlen(list[i].name) + 2;
	char *s = xcalloc(1, len);
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(s, ", ");
		strcat(s, list[i].name);
	}
	preset_list_free(list, n);
	return s;
}

/* The known preset closest to a mistyped name, malloc'd, or NULL. */
static char *suggest_preset(const char *name)
{
	struct preset_info *list = NULL;
	int n = preset_list(&list, NULL);
	const char **names = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*names));
	for (int i = 0; i < n; i++)
		names[i] = list[i].name;
	const char *near = suggest_name(name, names, n > 0 ? (size_t)n : 0);
	char *r = near ? xstrdup(near) : NULL;
	free(names);
	preset_list_free(list, n);
	return r;
}

int preset_load(const char *name, char **text, char **source, struct af_err *err)
{
	char q[256];
	if (!name_ok(name)) {
		af_err_usage(err, EINVAL, "invalid preset name '%s'", policy_quote(q, sizeof(q), name));
		af_err_hint(err, "preset names use letters, digits, '.', '_' and '-'");
		return -EINVAL;
	}
	autofree char *dir = user_dir();
	if (dir) {
		autofree char *path = xasprintf("%s/%s.ini", dir, name);
		if (access(path, F_OK) == 0 || errno != ENOENT) {
			int r = policy_read_file(path, "preset", PRESET_MAX_SIZE, text, err);
			if (r < 0)
				return r;
			*source = steal_pointer(&path);
			return 0;
		}
	}
	const struct builtin_preset *b = builtin_find(name);
	if (b) {
		*text = xstrdup(b->ini);
		*source = xstrdup("built-in");
		return 0;
	}
	af_err_usage(err, ENOENT, "unknown preset '%s'", name);
	autofree char *names = names_list();
	autofree char *near = suggest_preset(name);
	if (near)
		af_err_hint(err, "did you mean '%s'?\navailable presets: %s", near, names);
	else
		af_err_hint(err, "available presets: %s", names);
	return -ENOENT;
}

int policy_add_preset(struct policy *p, const char *name, struct af_err *err)
{
	autofree char *text = NULL;
	autofree char *source = NULL;
	int r = preset_load(name, &text, &source, err);
	if (r < 0)
		return r;
	/* a user preset's errors name its file, so the user can fix it */
	const char *label = strcmp(source, "built-in") == 0 ? name : source;
	r = policy_parse_ini(p, text, label, true, NULL, err);
	if (r == 0)
		policy_note_preset(p, name, source);
	return r;
}

static void info_fill(struct preset_info *pi, const char *name, const char *text,
		      const char *source)
{
	struct policy *p = policy_new();
	struct af_err e = { 0 };
	char *desc = NULL;
	if (policy_parse_ini(p, text, name, true, &desc, &e) < 0)
		desc = xasprintf("(unusable: %s)", e.msg);
	policy_free(p);
	pi->name = xstrdup(name);
	pi->description = desc ? desc : xstrdup("");
	pi->source = xstrdup(source);
}

static void info_clear(struct preset_info *pi)
{
	free(pi->name);
	free(pi->description);
	free(pi->source);
}

static int info_cmp(const void *a, const void *b)
{
	return strcmp(((const struct preset_info *)a)->name, ((const struct preset_info *)b)->name);
}

int preset_list(struct preset_info **out, struct af_err *err AF_UNUSED)
{
	struct preset_info *list = NULL;
	int n = 0;

	for (const struct builtin_preset *b = builtin_presets; b->name; b++) {
		list = xrealloc(list, (size_t)(n + 1) * sizeof(*list));
		info_fill(&list[n++], b->name, b->ini, "built-in");
	}

	autofree char *dir = user_dir();
	DIR *d = dir ? opendir(dir) : NULL;
	/* an unreadable user directory only means: no user presets */
	for (struct dirent *de; d && (de = readdir(d));) {
		size_t len = strlen(de->d_name);
		if (len <= 4 || strcmp(de->d_name + len - 4, ".ini") != 0)
			continue;
		autofree char *name = xstrndup(de->d_name, len - 4);
		if (!name_ok(name))
			continue;
		autofree char *path = xasprintf("%s/%s", dir, de->d_name);
		autofree char *text = NULL;
		struct af_err e = { 0 };
		if (policy_read_file(path, "preset", PRESET_MAX_SIZE, &text, &e) < 0)
			continue;
		int i;
		for (i = 0; i < n && strcmp(list[i].name, name) != 0; i++)
			;
		if (i == n)
			list = xrealloc(list, (size_t)(++n) * sizeof(*list));
		else
			info_clear(&list[i]);
		info_fill(&list[i], name, text, path);
	}
	if (d)
		closedir(d);
	if (n > 1)
		qsort(list, (size_t)n, sizeof(*list), info_cmp);
	*out = list;
	return n;
}

void preset_list_free(struct preset_info *list, int n)
{
	for (int i = 0; i < n; i++)
		info_clear(&list[i]);
	free(list);
}
