/* cmd_codebase.c - agentfense codebase create|ls|info|rm|put|get|files:
 * codebases through serve (started in the background when needed).
 *
 * Quiet on success but for what was asked (an id, a table, a file);
 * --json prints serve's JSON as it is, for scripts.  Exit codes: 0; the
 * results a script branches on, 1 not found and 3 conflict; 125 for
 * every error (usage, an argument serve refused, serve unreachable,
 * internal errors), as everywhere in agentfense. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/api_cli.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "common/suggest.h"
#include "common/units.h"

enum { EXIT_NOT_FOUND = 1, EXIT_CONFLICT = 3 };

struct cb_opts {
	const char *socket;
	bool json;
	bool force, recursive, tar;
	const char *from, *owner, *max_size;
	const char **labels, **ignores;
	int nlabels, nignores;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: agentfense codebase create [--from DIR] [--owner ID] [--label K=V]...\n"
		"                                  [--ignore PATTERN]... [--max-file-size SIZE] NAME\n"
		"   or: agentfense codebase ls [--owner ID] [--label K[=V]]\n"
		"   or: agentfense codebase info ID\n"
		"   or: agentfense codebase rm [--force] ID...\n"
		"   or: agentfense codebase put [--tar] ID LOCAL|- [PATH]\n"
		"   or: agentfense codebase get ID PATH [LOCAL|-]\n"
		"   or: agentfense codebase files [-r] ID [PATH]\n\n"
		"Manage codebases through agentfense serve, which is started in the\n"
		"background when nothing answers on the socket.  See agentfense-serve(1).\n\n"
		"options:\n"
		"      --force               rm: remove even a codebase in use\n"
		"      --from DIR            create: import DIR (honouring .gitignore and\n"
		"                            .sandboxignore)\n"
		"  -h, --help                show this help\n"
		"      --ignore PATTERN      create: also leave out what PATTERN matches\n"
		"      --json                print serve's JSON replies\n"
		"      --label K=V           create: add a label; ls: only with this label\n"
		"      --max-file-size SIZE  create: skip larger files (default 50 MiB;\n"
		"                            512K, 1.5M: see agentfense(1))\n"
		"      --owner ID            create: the owner id; ls: only this owner's\n"
		"  -r, --recursive           files: list the whole tree\n"
		"      --socket PATH         the socket of serve\n"
		"      --tar                 put: LOCAL is a tar archive to unpack at PATH\n");
}

/* A usage error, with a "did you mean" (if not NULL) before the pointer
 * to --help. */
static AF_NORETURN AF_PRINTF(2, 3) void usage_error_near(const char *near, const char *fmt, ...)
{
	static const struct api_cli c = { "codebase", NULL, false };
	va_list ap;
	va_start(ap, fmt);
	api_usage_verror(&c, near, fmt, ap);
}
#define usage_error(...) usage_error_near(NULL, __VA_ARGS__)

/* Exit with serve's error reply, its message as ours. */
static AF_NORETURN void die_reply(struct client_reply *rep)
{
	cJSON *j = cJSON_Parse(rep->body);
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(j, "code"));
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
	int ex = AF_EXIT_FAILURE;
	if (code && !strcmp(code, "not_found"))
		ex = EXIT_NOT_FOUND;
	else if (code && !strcmp(code, "conflict"))
		ex = EXIT_CONFLICT;
	fputs(AF_PROG ": ", stderr);
	if (msg)
		api_put_safe(stderr, msg);
	else
		fprintf(stderr, "agentfense serve answered %d", rep->status);
	fputc('\n', stderr);
	cJSON_Delete(j);
	client_reply_free(rep);
	exit(ex);
}

/* One request; dies on a transport error or an error reply.  Returns the
 * reply's JSON (NULL for a body sent to out_fd). */
static cJSON *call(const struct cb_opts *o, struct client_req *req)
{
	struct client_reply rep;
	struct af_err err = { 0 };
	if (client_call(o->socket, req, &rep, &err) < 0)
		die_err(&err);
	if (rep.status / 100 != 2)
		die_reply(&rep);
	cJSON *j = NULL;
	if (req->out_fd < 0) {
		j = cJSON_Parse(rep.body);
		if (!j)
			die(AF_EXIT_FAILURE, "agentfense serve sent a reply that is not JSON");
	}
	client_reply_free(&rep);
	return j;
}

static void print_json(const cJSON *j)
{
	char *s = cJSON_Print(j);
	if (!s)
		die(AF_EXIT_FAILURE, "cannot format JSON: out of memory");
	printf("%s\n", s);
	cJSON_free(s);
}

static const char *str(const cJSON *j, const char *k)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, k));
	return s ? s : "";
}

static double num(const cJSON *j, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(j, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* "12K", "3.4M": sizes for people. */
static void human_size(double b, char *buf, size_t len)
{
	static const char units[] = "BKMGTP";
	int u = 0;
	while (b >= 1024 && u < 5) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f", b);
	else
		snprintf(buf, len, b < 10 ? "%.1f%c" : "%.0f%c", b, units[u]);
}

static int cb_create(const struct cb_opts *o, const char *name)
{
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "name", name);
	if (o->owner)
		cJSON_AddStringToObject(body, "owner_id", o->owner);
	cJSON *labels = cJSON_AddObjectToObject(body, "labels");
	for (int i = 0; i < o->nlabels; i++) {
		const char *eq = strchr(o->labels[i], '=');
		if (!eq || eq == o->labels[i])
			usage_error("invalid label '%s': expected KEY=VALUE", o->labels[i]);
		autofree char *k = xstrndup(o->labels[i], (size_t)(eq - o->labels[i]));
		cJSON_DeleteItemFromObject(labels, k);
		cJSON_AddStringToObject(labels, k, eq + 1);
	}
	if (o->from) {
		char *abs = realpath(o->from, NULL);
		if (!abs)
			die(errno == ENOENT ? EXIT_NOT_FOUND : AF_EXIT_FAILURE, "cannot use '%s': %s",
			    o->from, strerror(errno));
		cJSON_AddStringToObject(body, "source_path", abs);
		free(abs);
	}
	if (o->nignores) {
		cJSON *a = cJSON_AddArrayToObject(body, "ignore_patterns");
		for (int i = 0; i < o->nignores; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(o->ignores[i]));
	}
	if (o->max_size) {
		uint64_t v;
		if (parse_size(o->max_size, &v) < 0 || v == 0)
			usage_error("invalid value '%s' for --max-file-size: expected a size such as "
				    "4096, 512K or 1.5M", o->max_size);
		cJSON_AddNumberToObject(body, "max_file_size", (double)v);
	}
	autofree char *text = api_json_text(body);
	struct client_req req = { "POST", "/v1/codebases", text, strlen(text), -1, 0, -1 };
	cJSON *j = call(o, &req);
	if (o->json) {
		print_json(j);
	} else {
		printf("%s\n", str(j, "id"));
		const cJSON *it;
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "skipped")) {
			fputs(AF_PROG ": warning: skipped '", stderr);
			api_put_safe(stderr, str(it, "path"));
			fprintf(stderr, "': %s", str(it, "reason"));
			if (cJSON_GetObjectItem(it, "size"))
				fprintf(stderr, " (%.0f bytes)", num(it, "size"));
			fputc('\n', stderr);
		}
	}
	cJSON_Delete(j);
	return 0;
}

static int cb_ls(const struct cb_opts *o)
{
	char path[4096] = "/v1/codebases";
	size_t n = strlen(path);
	char sep = '?';
	if (o->owner) {
		autofree char *e = client_escape(o->owner, false);
		n += (size_t)snprintf(path + n, sizeof(path) - n, "%cowner_id=%s", sep, e);
		sep = '&';
	}
	if (o->nlabels) {
		autofree char *e = client_escape(o->labels[o->nlabels - 1], false);
		snprintf(path + n, sizeof(path) - n, "%clabel=%s", sep, e);
	}
	struct client_req req = { "GET", path, NULL, 0, -1, 0, -1 };
	cJSON *j = call(o, &req);
	if (o->json) {
		print_json(cJSON_GetObjectItem(j, "codebases"));
		cJSON_Delete(j);
		return 0;
	}
	printf("%-35s  %-20s  %-12s  %7s  %7s  %s\n", "ID", "NAME", "OWNER", "FILES", "SIZE",
	       "CREATED");
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "codebases")) {
		char size[16];
		human_size(num(it, "size"), size, sizeof(size));
		printf("%-35s  ", str(it, "id"));
		api_put_pad(str(it, "name"), 20);
		api_put_pad(str(it, "owner_id"), 12);
		printf("%7.0f  %7s  %s\n", num(it, "file_count"), size, str(it, "created_at"));
	}
	cJSON_Delete(j);
	return 0;
}

static char *cb_path(const char *id, const char *suffix)
{
	autofree char *e = client_escape(id, false);
	return xasprintf("/v1/codebases/%s%s", e, suffix);
}

static int cb_info(const struct cb_opts *o, const char *id)
{
	autofree char *path = cb_path(id, "");
	struct client_req req = { "GET", path, NULL, 0, -1, 0, -1 };
	cJSON *j = call(o, &req);
	if (o->json) {
		print_json(j);
	} else {
		static const char *const keys[] = { "id", "name", "owner_id", "created_at",
						    "updated_at", NULL };
		for (const char *const *k = keys; *k; k++) {
			printf("%-11s ", *k);
			api_put_safe(stdout, str(j, *k));
			putchar('\n');
		}
		printf("%-11s %.0f\n%-11s %.0f\n", "file_count", num(j, "file_count"), "size",
		       num(j, "size"));
		const cJSON *it;
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "labels")) {
			printf("%-11s ", "label");
			api_put_safe(stdout, it->string);
			putchar('=');
			api_put_safe(stdout, cJSON_GetStringValue(it) ? it->valuestring : "");
			putchar('\n');
		}
	}
	cJSON_Delete(j);
	return 0;
}

static int cb_rm(const struct cb_opts *o, int n, char **ids)
{
	for (int i = 0; i < n; i++) {
		autofree char *path = cb_path(ids[i], o->force ? "?force=true" : "");
		struct client_req req = { "DELETE", path, NULL, 0, -1, 0, -1 };
		cJSON_Delete(call(o, &req));
	}
	return 0;
}

static int cb_put(const struct cb_opts *o, const char *id, const char *local, const char *remote)
{
	autoclose int fd = -1;
	int64_t size = -1;
	if (strcmp(local, "-") == 0) {
		fd = dup(0);
	} else {
		fd = open(local, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(errno == ENOENT ? EXIT_NOT_FOUND : AF_EXIT_FAILURE, "cannot open '%s': %s",
			    local, strerror(errno));
		struct stat st;
		if (fstat(fd, &st) < 0)
			die(AF_EXIT_FAILURE, "cannot stat '%s': %s", local, strerror(errno));
		if (S_ISDIR(st.st_mode))
			usage_error("'%s' is a directory: put one file, or a tar archive with --tar",
				    local);
		if (S_ISREG(st.st_mode))
			size = st.st_size;
	}
	autofree char *path = NULL;
	if (o->tar) {
		autofree char *e = client_escape(remote ? remote : "", false);
		path = cb_path(id, "/archive");
		if (remote) {
			char *p2 = xasprintf("%s?path=%s", path, e);
			free(path);
			path = p2;
		}
	} else {
		if (!remote) {
			if (strcmp(local, "-") == 0)
				usage_error("put from standard input needs a PATH in the codebase");
			remote = strrchr(local, '/') ? strrchr(local, '/') + 1 : local;
		}
		autofree char *e = client_escape(remote, true);
		autofree char *suffix = xasprintf("/files/%s", e);
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			char *s2 = xasprintf("%s?mode=%04o", suffix, (unsigned)(st.st_mode & 0777));
			free(suffix);
			suffix = s2;
		}
		path = cb_path(id, suffix);
	}
	struct client_req req = { o->tar ? "POST" : "PUT", path, NULL, 0, fd, size, -1 };
	cJSON *j = call(o, &req);
	if (o->json)
		print_json(j);
	cJSON_Delete(j);
	return 0;
}

static int cb_get(const struct cb_opts *o, const char *id, const char *remote, const char *local)
{
	autofree char *e = client_escape(remote, true);
	autofree char *suffix = xasprintf("/files/%s", e);
	autofree char *path = cb_path(id, suffix);
	bool to_stdout = !local || strcmp(local, "-") == 0;
	autofree char *tmp = NULL;
	autoclose int fd = -1;
	if (to_stdout) {
		fd = dup(1);
	} else {
		/* written beside the target and renamed: a failed download
		 * leaves no half file under the name */
		tmp = xasprintf("%s.agentfense-XXXXXX", local);
		fd = mkstemp(tmp);
		if (fd < 0)
			die(AF_EXIT_FAILURE, "cannot create '%s': %s", local, strerror(errno));
	}
	struct client_req req = { "GET", path, NULL, 0, -1, 0, fd };
	struct client_reply rep;
	struct af_err err = { 0 };
	int r = client_call(o->socket, &req, &rep, &err);
	if (r < 0 || rep.status / 100 != 2) {
		if (tmp)
			unlink(tmp);
		if (r < 0)
			die_err(&err);
		die_reply(&rep);
	}
	client_reply_free(&rep);
	if (tmp) {
		fchmod(fd, 0644 & ~umask(umask(0)));
		if (rename(tmp, local) < 0) {
			int e2 = errno;
			unlink(tmp);
			die(AF_EXIT_FAILURE, "cannot write '%s': %s", local, strerror(e2));
		}
	}
	return 0;
}

static int cb_files(const struct cb_opts *o, const char *id, const char *dir)
{
	autofree char *e = client_escape(dir ? dir : "", false);
	autofree char *suffix = xasprintf("/files?path=%s%s", e, o->recursive ? "&recursive=true" : "");
	autofree char *path = cb_path(id, suffix);
	struct client_req req = { "GET", path, NULL, 0, -1, 0, -1 };
	cJSON *j = call(o, &req);
	if (o->json) {
		print_json(cJSON_GetObjectItem(j, "files"));
		cJSON_Delete(j);
		return 0;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "files")) {
		bool d = cJSON_IsTrue(cJSON_GetObjectItem(it, "is_dir"));
		bool l = strcmp(str(it, "type"), "symlink") == 0;
		printf("%s %s %10.0f  %s  ", d ? "d" : l ? "l" : "-", str(it, "mode"),
		       num(it, "size"), str(it, "mtime"));
		api_put_safe(stdout, str(it, "path"));
		puts(d ? "/" : "");
	}
	cJSON_Delete(j);
	return 0;
}

int cmd_codebase(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_JSON, OPT_FORCE, OPT_FROM, OPT_OWNER, OPT_LABEL, OPT_IGNORE,
	       OPT_MAXSIZE, OPT_TAR };
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "help", no_argument, NULL, 'h' },
		{ "ignore", required_argument, NULL, OPT_IGNORE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "max-file-size", required_argument, NULL, OPT_MAXSIZE },
		{ "owner", required_argument, NULL, OPT_OWNER },
		{ "recursive", no_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "tar", no_argument, NULL, OPT_TAR },
		{ NULL, 0, NULL, 0 },
	};
	struct cb_opts o = { 0 };
	int c;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hr", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'r':
			o.recursive = true;
			break;
		case OPT_SOCKET:
			o.socket = optarg;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_FORCE:
			o.force = true;
			break;
		case OPT_TAR:
			o.tar = true;
			break;
		case OPT_FROM:
			o.from = optarg;
			break;
		case OPT_OWNER:
			o.owner = optarg;
			break;
		case OPT_MAXSIZE:
			o.max_size = optarg;
			break;
		case OPT_LABEL:
			o.labels = xrealloc(o.labels, (size_t)(o.nlabels + 1) * sizeof(*o.labels));
			o.labels[o.nlabels++] = optarg;
			break;
		case OPT_IGNORE:
			o.ignores = xrealloc(o.ignores, (size_t)(o.nignores + 1) * sizeof(*o.ignores));
			o.ignores[o.nignores++] = optarg;
			break;
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
		default: {
			const char *near = suggest_option(argv[optind - 1], longopts);
			autofree char *dashed = near ? xasprintf("--%s", near) : NULL;
			usage_error_near(dashed, "unknown option '%s'", argv[optind - 1]);
		}
		}
	}
	int n = argc - optind;
	char **a = argv + optind;
	if (n < 1)
		usage_error("missing subcommand: create, ls, info, rm, put, get or files");
	const char *sub = a[0];
	a++;
	n--;
	int r;
#define NARGS(lo, hi)                                                                  \
	do {                                                                           \
		if (n < (lo) || n > (hi))                                              \
			usage_error("wrong number of arguments for 'codebase %s'", sub); \
	} while (0)
	if (!strcmp(sub, "create")) {
		NARGS(1, 1);
		r = cb_create(&o, a[0]);
	} else if (!strcmp(sub, "ls")) {
		NARGS(0, 0);
		r = cb_ls(&o);
	} else if (!strcmp(sub, "info")) {
		NARGS(1, 1);
		r = cb_info(&o, a[0]);
	} else if (!strcmp(sub, "rm")) {
		NARGS(1, 1000000);
		r = cb_rm(&o, n, a);
	} else if (!strcmp(sub, "put")) {
		NARGS(2, 3);
		r = cb_put(&o, a[0], a[1], n > 2 ? a[2] : NULL);
	} else if (!strcmp(sub, "get")) {
		NARGS(2, 3);
		r = cb_get(&o, a[0], a[1], n > 2 ? a[2] : NULL);
	} else if (!strcmp(sub, "files")) {
		NARGS(1, 2);
		r = cb_files(&o, a[0], n > 1 ? a[1] : NULL);
	} else {
		static const char *const subs[] = { "create", "files", "get", "info",
						    "ls", "put", "rm" };
		usage_error_near(suggest_name(sub, subs, ARRAY_SIZE(subs)),
				 "unknown subcommand 'codebase %s'", sub);
	}
#undef NARGS
	free(o.labels);
	free(o.ignores);
	return r;
}
