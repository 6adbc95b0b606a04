/* test_client.c - the client side of serve's streams: records split at
 * newlines whatever the chunks, base64 both ways, exec stream events to
 * stdout and stderr and the exit status they give. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/api_cli.h"
#include "cli/client.h"
#include "tap.h"

struct got {
	char text[1024];
	int n;
	int stop_at; /* return -EPIPE on this record (1-based), 0: never */
};

static int collect(char *line, size_t len, void *arg)
{
	struct got *g = arg;
	g->n++;
	if (strlen(line) != len)
		return -EINVAL;
	snprintf(g->text + strlen(g->text), sizeof(g->text) - strlen(g->text), "[%s]", line);
	return g->n == g->stop_at ? -EPIPE : 0;
}

/* Feed s in pieces of step bytes, then the end. */
static int feed(const char *s, size_t step, struct got *g, size_t max)
{
	char *buf = NULL;
	size_t len = 0;
	int r = 0;
	for (size_t i = 0; i < strlen(s) && !r; i += step) {
		size_t n = strlen(s) - i < step ? strlen(s) - i : step;
		r = client_split_lines(&buf, &len, s + i, n, false, max, collect, g);
	}
	if (!r)
		r = client_split_lines(&buf, &len, "", 0, true, max, collect, g);
	free(buf);
	return r;
}

static void split(void)
{
	const char *s = "{\"a\":1}\n\n{\"b\":\"x y\"}\nlast";
	for (size_t step = 1; step <= strlen(s); step++) {
		struct got g = { .n = 0 };
		int r = feed(s, step, &g, 1024);
		TAP_OK(r == 0 && !strcmp(g.text, "[{\"a\":1}][][{\"b\":\"x y\"}][last]") && g.n == 4,
		       "records split the same in chunks of %zu bytes (got %s)", step, g.text);
	}
	struct got g = { .stop_at = 2 };
	TAP_OK(feed("a\nb\nc\n", 6, &g, 1024) == -EPIPE && g.n == 2,
	       "a callback's error stops the reading at once");
	struct got g2 = { 0 };
	TAP_OK(feed("0123456789abcdef", 4, &g2, 8) == -E2BIG && g2.n == 0,
	       "a record past the limit is refused, not buffered");
	struct got g3 = { 0 };
	TAP_OK(feed("x\n", 2, &g3, 1024) == 0 && g3.n == 1 && !strcmp(g3.text, "[x]"),
	       "a stream ending in a newline has no empty last record");
}

static void base64(void)
{
	static const struct { const char *plain, *b64; } v[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *e = api_base64_encode((const unsigned char *)v[i].plain, strlen(v[i].plain));
		TAP_STREQ(e, v[i].b64, "base64 of '%s'", v[i].plain);
		free(e);
		size_t n = 99;
		unsigned char *d = api_base64_decode(v[i].b64, &n);
		TAP_OK(d && n == strlen(v[i].plain) && !memcmp(d, v[i].plain, n),
		       "base64 '%s' decodes", v[i].b64);
		free(d);
	}
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *e = api_base64_encode(all, sizeof(all));
	size_t n = 0;
	unsigned char *d = api_base64_decode(e, &n);
	TAP_OK(d && n == 256 && !memcmp(d, all, 256), "every byte survives base64 both ways");
	free(d);
	free(e);
	size_t m;
	TAP_OK(!api_base64_decode("Zm9v!", &m), "base64 with a stray character is refused");
	TAP_OK(!api_base64_decode("Z", &m), "base64 of an impossible length is refused");
}

/* Run lines through api_exec_line with fds 1 and 2 on pipes; the bytes
 * each got in out/err. */
static int events(const char *const *lines, struct api_exec_end *end, char *out, char *err)
{
	int po[2], pe[2];
	if (pipe(po) < 0 || pipe(pe) < 0)
		return -1;
	fflush(stdout);
	int so = dup(1), se = dup(2);
	dup2(po[1], 1);
	dup2(pe[1], 2);
	close(po[1]);
	close(pe[1]);
	int r = 0;
	for (; *lines && !r; lines++) {
		char *l = strdup(*lines);
		r = api_exec_line(l, strlen(l), end);
		free(l);
	}
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	ssize_t a = read(po[0], out, 255), b = read(pe[0], err, 255);
	out[a < 0 ? 0 : a] = '\0';
	err[b < 0 ? 0 : b] = '\0';
	close(po[0]);
	close(pe[0]);
	return r;
}

static void exec_stream(void)
{
	char out[256], err[256];
	struct api_exec_end end = { 0 };
	static const char *const ok[] = {
		"{\"type\":\"stdout\",\"data\":\"one\\n\"}",
		"{\"type\":\"stderr\",\"data\":\"warn\\n\"}",
		"{\"type\":\"stdout\",\"data_base64\":\"/wA=\"}",
		"{\"type\":\"progress\",\"data\":\"ignored\"}",
		"{\"type\":\"exit\",\"exit_code\":3,\"duration\":\"0.004s\",\"timed_out\":false,"
		"\"signal\":0}",
		NULL,
	};
	TAP_OK(events(ok, &end, out, err) == 0, "an exec stream is read");
	TAP_OK(!memcmp(out, "one\n\xff", 6) && !strcmp(err, "warn\n"),
	       "stdout and stderr events reach their fds, bytes from data_base64 as they are");
	TAP_OK(end.ended && end.exit_code == 3 && api_exec_status(NULL, &end) == 3,
	       "the command's exit status is ours");

	struct api_exec_end t = { 0 };
	static const char *const timeout[] = {
		"{\"type\":\"exit\",\"exit_code\":124,\"timed_out\":true,\"signal\":9}", NULL,
	};
	events(timeout, &t, out, err);
	TAP_OK(api_exec_status(NULL, &t) == 124, "a timeout exits 124");

	struct api_exec_end bad = { 0 };
	static const char *const broken[] = { "{\"type\":\"stdout\",", NULL };
	TAP_OK(events(broken, &bad, out, err) == -EPROTO, "a record that is not JSON is an error");
	static const char *const badb64[] = { "{\"type\":\"stdout\",\"data_base64\":\"%%\"}", NULL };
	TAP_OK(events(badb64, &bad, out, err) == -EPROTO, "bad base64 is an error");
	TAP_OK(!bad.ended, "an unended stream is no exit");

	struct api_exec_end er = { 0 };
	static const char *const error[] = {
		"{\"type\":\"error\",\"code\":\"internal\",\"message\":\"sandbox stopped\"}", NULL,
	};
	events(error, &er, out, err);
	TAP_OK(er.ended && !strcmp(er.error.code, "internal") &&
	       !strcmp(er.error.message, "sandbox stopped"), "an error event is recorded");
}

int main(void)
{
	split();
	base64();
	exec_stream();
	return tap_done();
}
