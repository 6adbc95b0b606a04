/* servebench - requests to agentfense serve over its Unix socket on
 * keep-alive HTTP/1.1 connections, timed one by one (a benchmark tool for
 * bench/serve; not installed).  A client in C, so that what is measured
 * is serve and not the client.
 *
 *   servebench SOCK latency N METHOD PATH [BODY [EXPECT]]
 *       N requests one after another on one connection; each must answer
 *       2xx, with EXPECT in its body if given.  Prints {"n":N,"p50_ms":..,"p99_ms":..,"mean_ms":..,"max_ms":..}.
 *   servebench SOCK create N CODEBASE
 *       N times: POST /v1/sandboxes {"codebase_id":CODEBASE,"start":true,
 *       "on_destroy":"discard"} (timed: create + start), then DELETE it
 *       (not timed).  Prints as latency.
 *   servebench SOCK spread CLIENTS TOTAL ID...
 *       CLIENTS threads, each on its own connection, run TOTAL execs in
 *       all of `echo ID` spread round-robin over the sandboxes ID...; each
 *       reply must be exit_code 0 with stdout "ID\n".  Prints latency's
 *       fields plus "ok", "wrong", "seconds" and "per_second".
 *
 * Exits 0 if every request was right, 1 if one was not (the first wrong
 * reply on stderr), 125 on bad usage or a broken connection. */
#include <cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <http_parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dial(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "servebench: cannot connect to '%s': %s\n", sock_path,
			strerror(errno));
		exit(125);
	}
	return fd;
}

struct reply {
	int status;
	char *body;
	size_t len;
	bool done;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct reply *r = p->data;
	char *b = realloc(r->body, r->len + len + 1);
	if (!b)
		return -1;
	memcpy(b + r->len, at, len);
	r->len += len;
	b[r->len] = '\0';
	r->body = b;
	return 0;
}

static int on_done(http_parser *p)
{
	struct reply *r = p->data;
	r->done = true;
	r->status = (int)p->status_code;
	return 0;
}

/* One request on connection fd; the reply in *r (body malloc'd).
 * Returns 0, or -1 when the connection broke. */
static int request(int fd, const char *method, const char *path, const char *body,
		   struct reply *r)
{
	char head[1024];
	size_t blen = body ? strlen(body) : 0;
	int hl = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: agentfense\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\n\r\n", method, path, blen);
	struct iovec iov[2] = { { head, (size_t)hl }, { (void *)body, blen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = body ? 2 : 1 };
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)((size_t)hl + blen))
		return -1;
	memset(r, 0, sizeof(*r));
	http_parser p;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = r;
	http_parser_settings s = { 0 };
	s.on_body = on_body;
	s.on_message_complete = on_done;
	char buf[65536];
	while (!r->done) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		if (http_parser_execute(&p, &s, buf, (size_t)n) != (size_t)n ||
		    HTTP_PARSER_ERRNO(&p) != HPE_OK)
			return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void print_stats(double *t, size_t n, const char *extra)
{
	qsort(t, n, sizeof(*t), cmp_double);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += t[i];
	size_t p99 = n ? (size_t)((double)(n - 1) * 0.99 + 0.5) : 0;
	printf("{\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"mean_ms\":%.3f,\"max_ms\":%.3f%s}\n", n,
	       n ? t[(n - 1) / 2] : 0, n ? t[p99] : 0, n ? sum / (double)n : 0, n ? t[n - 1] : 0,
	       extra);
}

static void wrong(const char *what, const struct reply *r)
{
	fprintf(stderr, "servebench: %s: status %d: %.300s\n", what, r->status,
		r->body ? r->body : "");
}

static int latency(int n, const char *method, const char *path, const char *body,
		   const char *expect)
{
	int fd = dial();
	double *t = calloc((size_t)n, sizeof(*t));
	int bad = 0;
	for (int i = 0; i < n; i++) {
		struct reply r;
		double t0 = now_ms();
		if (request(fd, method, path, body, &r) < 0) {
			fprintf(stderr, "servebench: the connection broke\n");
			exit(125);
		}
		t[i] = now_ms() - t0;
		if ((r.status / 100 != 2 || (expect && (!r.body || !strstr(r.body, expect)))) &&
		    !bad++)
			wrong(path, &r);
		free(r.body);
	}
	print_stats(t, (size_t)n, "");
	free(t);
	close(fd);
	return bad ? 1 : 0;
}

static int create(int n, const char *codebase)
{
	int fd = dial();
	double *t = calloc((size_t)n, sizeof(*t));
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"codebase_id\":\"%s\",\"start\":true,\"on_destroy\":\"discard\"}", codebase);
	int bad = 0;
	for (int i = 0; i < n; i++) {
		struct reply r;
		double t0 = now_ms();
		if (request(fd, "POST", "/v1/sandboxes", body, &r) < 0)
			exit(125);
		t[i] = now_ms() - t0;
		cJSON *j = cJSON_Parse(r.body);
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "id"));
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(j, "status"));
		if (r.status / 100 != 2 || !id || !st || strcmp(st, "running")) {
			if (!bad++)
				wrong("create", &r);
		}
		if (id) {
			char path[128];
			struct reply d;
			snprintf(path, sizeof(path), "/v1/sandboxes/%s", id);
			if (request(fd, "DELETE", path, NULL, &d) < 0)
				exit(125);
			if (d.status / 100 != 2 && !bad++)
				wrong("delete", &d);
			free(d.body);
		}
		cJSON_Delete(j);
		free(r.body);
	}
	print_stats(t, (size_t)n, "");
	free(t);
	close(fd);
	return bad ? 1 : 0;
}

struct worker {
	pthread_t th;
	int first, count, stride;
	char **ids;
	int nids;
	double *t;
	int ok, bad;
};

static void *spread_worker(void *arg)
{
	struct worker *w = arg;
	int fd = dial();
	for (int k = 0; k < w->count; k++) {
		int i = w->first + k * w->stride;
		const char *id = w->ids[i % w->nids];
		char path[128], body[256], want[64];
		snprintf(path, sizeof(path), "/v1/sandboxes/%s/exec", id);
		snprintf(body, sizeof(body), "{\"argv\":[\"echo\",\"%s\"]}", id);
		snprintf(want, sizeof(want), "%s\n", id);
		struct reply r;
		double t0 = now_ms();
		if (request(fd, "POST", path, body, &r) < 0) {
			fprintf(stderr, "servebench: the connection broke\n");
			exit(125);
		}
		w->t[k] = now_ms() - t0;
		cJSON *j = cJSON_Parse(r.body);
		const char *out = cJSON_GetStringValue(cJSON_GetObjectItem(j, "stdout"));
		const cJSON *code = cJSON_GetObjectItem(j, "exit_code");
		if (r.status == 200 && out && !strcmp(out, want) && cJSON_IsNumber(code) &&
		    code->valuedouble == 0) {
			w->ok++;
		} else if (!w->bad++) {
			wrong(path, &r);
		}
		cJSON_Delete(j);
		free(r.body);
	}
	close(fd);
	return NULL;
}

static int spread(int clients, int total, char **ids, int nids)
{
	struct worker *w = calloc((size_t)clients, sizeof(*w));
	double *all = calloc((size_t)total, sizeof(*all));
	double t0 = now_ms();
	int at = 0;
	for (int c = 0; c < clients; c++) {
		w[c].first = c;
		w[c].stride = clients;
		w[c].count = total / clients + (c < total % clients);
		w[c].ids = ids;
		w[c].nids = nids;
		w[c].t = all + at;
		at += w[c].count;
		pthread_create(&w[c].th, NULL, spread_worker, &w[c]);
	}
	int ok = 0, bad = 0;
	for (int c = 0; c < clients; c++) {
		pthread_join(w[c].th, NULL);
		ok += w[c].ok;
		bad += w[c].bad;
	}
	double secs = (now_ms() - t0) / 1e3;
	char extra[256];
	snprintf(extra, sizeof(extra),
		 ",\"clients\":%d,\"ok\":%d,\"wrong\":%d,\"seconds\":%.3f,\"per_second\":%.1f",
		 clients, ok, bad, secs, (double)total / secs);
	print_stats(all, (size_t)total, extra);
	free(all);
	free(w);
	return bad ? 1 : 0;
}

static int number(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1 || v > 10000000) {
		fprintf(stderr, "servebench: invalid number '%s'\n", s);
		exit(125);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[2], "latency") && argc <= 8) {
		sock_path = argv[1];
		return latency(number(argv[3]), argv[4], argc > 5 ? argv[5] : "/",
			       argc > 6 ? argv[6] : NULL, argc > 7 ? argv[7] : NULL);
	}
	if (argc == 5 && !strcmp(argv[2], "create")) {
		sock_path = argv[1];
		return create(number(argv[3]), argv[4]);
	}
	if (argc >= 6 && !strcmp(argv[2], "spread")) {
		sock_path = argv[1];
		return spread(number(argv[3]), number(argv[4]), argv + 5, argc - 5);
	}
	fprintf(stderr, "usage: servebench SOCK latency N METHOD PATH [BODY [EXPECT]]\n"
			"       servebench SOCK create N CODEBASE\n"
			"       servebench SOCK spread CLIENTS TOTAL ID...\n");
	return 125;
}
