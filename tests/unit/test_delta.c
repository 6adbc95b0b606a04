/* test_delta.c - unit tests of the delta: run directory, base records,
 * manifest, removal and sync back to the project.  Builds a project and
 * a delta by hand in temp directories (as the view would: upper files,
 * whiteouts, base records) and checks the project tree after sync.  Runs
 * as root and as an ordinary user. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "delta/delta.h"
#include "delta/delta_int.h"
#include "tap.h"

static char *tmproot;

/* like TAP_STREQ, without its -Wshadow clash when nested in TAP_OK */
static bool streq_show(const char *a, const char *b)
{
	bool ok = a && b && strcmp(a, b) == 0;
	if (!ok)
		printf("#   got '%s', expected '%s'\n", a ? a : "(null)", b ? b : "(null)");
	return ok;
}
#define STREQ(a, b, ...) TAP_OK(streq_show((a), (b)), __VA_ARGS__)

static char *mktmp(const char *name)
{
	char *p = xasprintf("%s/%s", tmproot, name);
	if (mkdir(p, 0755) < 0) {
		perror(p);
		exit(99);
	}
	return p;
}

static void wfile(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write_all(fd, content, strlen(content)) < 0) {
		perror(path);
		exit(99);
	}
	fchmod(fd, mode);
	close(fd);
}

/* File content, or NULL if it cannot be read; static buffer. */
static const char *rfile(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	ssize_t n = read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void xmkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0) {
		perror(path);
		exit(99);
	}
	chmod(path, mode);
}

static void xsymlink(const char *target, const char *path)
{
	if (symlink(target, path) < 0) {
		perror(path);
		exit(99);
	}
}

static void whiteout(const char *path)
{
	if (mknod(path, S_IFCHR | 0600, makedev(0, 0)) < 0) {
		perror(path);
		exit(99);
	}
}

/* Record the base of project path rel as the view would. */
static void note(struct delta *d, const char *proj, const char *rel)
{
	autofree char *p = xasprintf("%s/%s", proj, rel);
	struct stat st;
	if (lstat(p, &st) == 0)
		delta_note_base(d, rel, &st);
	else
		delta_note_base(d, rel, NULL);
}

static char *up(struct delta *d, const char *rel)
{
	return xasprintf("%s/upper/%s", delta_path(d), rel);
}

static char *pj(const char *proj, const char *rel)
{
	return xasprintf("%s/%s", proj, rel);
}

/* stderr capture around delta_sync */
static int saved_stderr = -1;
static char *capfile;

static void capture_start(void)
{
	fflush(stderr);
	capfile = xasprintf("%s/stderr.txt", tmproot);
	int fd = open(capfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	const char *s = rfile(capfile);
	char *r = xstrdup(s ? s : "");
	unlink(capfile);
	free(capfile);
	return r;
}

static struct delta *new_delta(const char *state, const char *proj)
{
	struct delta *d = NULL;
	struct af_err err = { 0 };
	if (delta_create(state, proj, &d, &err) < 0) {
		fprintf(stderr, "delta_create: %s\n", err.msg);
		exit(99);
	}
	return d;
}

static void test_state_dir(void)
{
	struct af_err err = { 0 };
	char *oxdg = getenv("XDG_STATE_HOME") ? xstrdup(getenv("XDG_STATE_HOME")) : NULL;
	char *ohome = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;

	setenv("XDG_STATE_HOME", "/x/state", 1);
	autofree char *a = delta_state_dir(&err);
	STREQ(a, "/x/state/agentfense/runs", "state dir from XDG_STATE_HOME");
	setenv("XDG_STATE_HOME", "relative/state", 1);
	setenv("HOME", "/h/me", 1);
	autofree char *b = delta_state_dir(&err);
	STREQ(b, "/h/me/.local/state/agentfense/runs", "relative XDG_STATE_HOME is ignored");
	unsetenv("XDG_STATE_HOME");
	unsetenv("HOME");
	autofree char *c = delta_state_dir(&err);
	struct passwd *pw = getpwuid(getuid());
	autofree char *want = xasprintf("%s/.local/state/agentfense/runs", pw ? pw->pw_dir : "?");
	STREQ(c, want, "no HOME: home from the password database");

	if (oxdg)
		setenv("XDG_STATE_HOME", oxdg, 1);
	if (ohome)
		setenv("HOME", ohome, 1);
	free(oxdg);
	free(ohome);
}

static void test_create(void)
{
	autofree char *base = mktmp("create");
	autofree char *state = xasprintf("%s/deep/er/runs", base);
	struct delta *d = NULL;
	struct af_err err = { 0 };
	int r = delta_create(state, "/some/proj\nect", &d, &err);
	TAP_OK(r == 0 && d, "delta_create in a missing nested state dir: %s", err.msg);
	if (!d)
		return;
	struct stat st;
	TAP_OK(stat(state, &st) == 0 && (st.st_mode & 07777) == 0700, "state dir is mode 0700");
	autofree char *prefix = xasprintf("%s/run-", state);
	TAP_OK(strncmp(delta_path(d), prefix, strlen(prefix)) == 0, "run dir '%s' is under the state dir",
	       delta_path(d));
	autofree char *upper = xasprintf("%s/upper", delta_path(d));
	autofree char *work = xasprintf("%s/work", delta_path(d));
	autofree char *probe = xasprintf("%s/work/.whiteout-probe", delta_path(d));
	autofree char *info = xasprintf("%s/info", delta_path(d));
	TAP_OK(stat(upper, &st) == 0 && S_ISDIR(st.st_mode), "upper/ exists");
	TAP_OK(stat(work, &st) == 0 && S_ISDIR(st.st_mode), "work/ exists");
	TAP_OK(!exists(probe), "the whiteout probe is gone");
	TAP_OK(fstat(delta_upper_fd(d), &st) == 0 && S_ISDIR(st.st_mode), "upper fd is a directory");
	TAP_OK(fstat(delta_work_fd(d), &st) == 0 && S_ISDIR(st.st_mode), "work fd is a directory");
	const char *s = rfile(info);
	TAP_OK(s && strstr(s, "project /some/proj\\nect\n") && strstr(s, "version " AF_VERSION "\n") &&
		       strstr(s, "created "),
	       "info names project (escaped), version and time");

	struct delta *d2 = new_delta(state, "/p");
	TAP_OK(strcmp(delta_path(d), delta_path(d2)) != 0, "two runs get two run dirs");
	autofree char *p1 = xstrdup(delta_path(d)), *p2 = xstrdup(delta_path(d2));
	TAP_OK(delta_remove(d, &err) == 0 && !exists(p1), "delta_remove of a fresh delta");
	TAP_OK(delta_remove(d2, &err) == 0 && !exists(p2), "delta_remove of the second delta");
	delta_free(d);
	delta_free(d2);

	/* a state dir that is a file */
	autofree char *file = xasprintf("%s/afile", base);
	wfile(file, "x", 0644);
	autofree char *bad = xasprintf("%s/runs", file);
	d = NULL;
	r = delta_create(bad, "/p", &d, &err);
	TAP_OK(r < 0 && !d && strstr(err.msg, bad), "bad state dir: error names it: %s", err.msg);
}

static void test_base_records(void)
{
	autofree char *state = mktmp("bases");
	struct delta *d = new_delta(state, "/p");
	struct stat st = { 0 };
	struct delta_base b;

	st.st_mode = S_IFREG | 0644;
	st.st_ino = 1;
	st.st_size = 10;
	delta_note_base(d, "a", &st);
	st.st_ino = 2;
	delta_note_base(d, "a", &st);
	delta_note_base(d, "a", NULL);
	TAP_OK(delta_get_base(d, "a", &b) && b.existed && b.ino == 1 && b.size == 10,
	       "first touch wins");
	delta_note_base(d, "b", NULL);
	TAP_OK(delta_get_base(d, "b", &b) && !b.existed, "NULL records 'did not exist'");
	TAP_OK(!delta_get_base(d, "c", &b), "no record for an untouched path");
	for (int i = 0; i < 3000; i++) {
		char p[32];
		snprintf(p, sizeof(p), "many/%d", i);
		st.st_ino = (ino_t)i + 100;
		delta_note_base(d, p, &st);
	}
	bool all = true;
	for (int i = 0; i < 3000; i++) {
		char p[32];
		snprintf(p, sizeof(p), "many/%d", i);
		all = all && delta_get_base(d, p, &b) && b.ino == (ino_t)i + 100;
	}
	TAP_OK(all && delta_base_count(d) == 3002, "3000 records survive the table growing");
	delta_remove(d, NULL);
	delta_free(d);
}

struct hammer {
	struct delta *d;
	int id;
};

static void *hammer_fn(void *arg)
{
	struct hammer *h = arg;
	struct stat st = { 0 };
	st.st_mode = S_IFREG | 0600;
	st.st_ino = (ino_t)h->id;
	st.st_size = h->id;
	st.st_mtim.tv_sec = h->id;
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 2000; i++) {
			char p[32];
			/* each thread walks the paths in its own order */
			snprintf(p, sizeof(p), "t/%d", (i * 7 + h->id * 131) % 2000);
			delta_note_base(h->d, p, &st);
			struct delta_base b;
			delta_get_base(h->d, p, &b);
		}
	return NULL;
}

static void test_threads(void)
{
	autofree char *state = mktmp("threads");
	struct delta *d = new_delta(state, "/p");
	pthread_t t[8];
	struct hammer h[8];
	for (int i = 0; i < 8; i++) {
		h[i].d = d;
		h[i].id = i + 1;
		pthread_create(&t[i], NULL, hammer_fn, &h[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	bool ok = delta_base_count(d) == 2000;
	for (int i = 0; i < 2000 && ok; i++) {
		char p[32];
		struct delta_base b;
		snprintf(p, sizeof(p), "t/%d", i);
		ok = delta_get_base(d, p, &b) && b.ino >= 1 && b.ino <= 8 && (off_t)b.ino == b.size &&
		     (time_t)b.ino == b.mtime.tv_sec;
	}
	TAP_OK(ok, "8 threads noting 2000 paths: one whole record each");
	delta_remove(d, NULL);
	delta_free(d);
}

static void test_manifest(void)
{
	autofree char *state = mktmp("manifest");
	struct delta *d = new_delta(state, "/p");
	struct af_err err = { 0 };
	struct stat st = { 0 };
	const char *weird = "we\nird\tna\\me\x01 and \xc3\xbc ";

	st.st_mode = S_IFREG | 0644;
	st.st_ino = 42;
	st.st_size = 7;
	st.st_mtim.tv_sec = 100;
	st.st_mtim.tv_nsec = 5;
	st.st_ctim.tv_sec = 200;
	st.st_ctim.tv_nsec = 6;
	delta_note_base(d, "src/plain.txt", &st);
	delta_note_base(d, weird, NULL);
	st.st_mode = S_IFDIR | 0755;
	delta_note_base(d, "", &st);
	TAP_OK(delta_save(d, &err) == 0, "delta_save: %s", err.msg);
	autofree char *mpath = xasprintf("%s/manifest", delta_path(d));
	const char *m = rfile(mpath);
	TAP_OK(m && strncmp(m, "# agentfense manifest 1\n", 24) == 0, "manifest header");
	TAP_OK(m && strstr(m, "\nE 100644 42 7 100.000000005 200.000000006 /src/plain.txt\n"),
	       "record of an existing file");
	const char *wline = "\nN - - - - - /we\\nird\\tna\\\\me\\x01 and \xc3\xbc \n";
	TAP_OK(m && strstr(m, wline), "a path with newline, tab, backslash, control byte is escaped");
	TAP_OK(m && strstr(m, "\nE 40755 42 7 100.000000005 200.000000006 /\n"), "root is '/'");
	const char *r1 = m ? strstr(m, " /\n") : NULL, *r2 = m ? strstr(m, "/src/plain.txt") : NULL,
		   *r3 = m ? strstr(m, "/we\\n") : NULL;
	TAP_OK(r1 && r2 && r3 && r1 < r2 && r2 < r3, "records sorted by path");
	int lines = 0;
	for (const char *p = m; p && *p; p++)
		lines += *p == '\n';
	TAP_OK(lines == 6, "one line per record plus 3 comment lines (%d)", lines);
	/* read the weird line back */
	autofree char *field = xstrdup(strstr(m, wline) + 14);
	*strchr(field, '\n') = '\0';
	autofree char *back = delta_unescape(field);
	STREQ(back, weird, "unescape gives the path back");

	char all[256];
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	autofree char *e = delta_escape(all);
	autofree char *u = delta_unescape(e);
	TAP_OK(u && memcmp(u, all, 256) == 0 && !strchr(e, '\n') && !strchr(e, '\t'),
	       "escape/unescape round trip of every byte");
	autofree char *bad1 = delta_unescape("a\\q");
	autofree char *bad2 = delta_unescape("a\\x00");
	autofree char *bad3 = delta_unescape("a\\");
	TAP_OK(!bad1 && !bad2 && !bad3, "malformed escapes are rejected");
	delta_remove(d, NULL);
	delta_free(d);
}

/* A run directory left behind is opened again with its base records. */
static void test_open(void)
{
	autofree char *dir = mktmp("open");
	autofree char *state = realpath(dir, NULL);
	struct delta *d = new_delta(state, "/p"), *o = NULL;
	struct af_err err = { 0 };
	struct stat st = { .st_mode = S_IFREG | 0644, .st_ino = 42, .st_size = 7 };
	st.st_mtim.tv_sec = 100;
	st.st_mtim.tv_nsec = 5;
	st.st_ctim.tv_sec = 200;
	st.st_ctim.tv_nsec = 6;
	const char *weird = "we\nird \\x";
	autofree char *path = xstrdup(delta_path(d));

	/* no manifest yet: a run killed before it saved one */
	TAP_OK(delta_open(state, path, "/p", &o, &err) == 0 && delta_base_count(o) == 0,
	       "delta_open without a manifest: no base records (%s)", err.msg);
	delta_free(steal_pointer(&o));

	delta_note_base(d, "src/plain.txt", &st);
	delta_note_base(d, weird, NULL);
	st.st_mode = S_IFDIR | 0755;
	delta_note_base(d, "", &st);
	TAP_OK(delta_save(d, &err) == 0, "delta_save: %s", err.msg);
	TAP_OK(delta_open(state, path, "/p", &o, &err) == 0, "delta_open: %s", err.msg);
	struct delta_base b = { 0 }, w = { .existed = true }, r = { 0 };
	bool ok = o && delta_base_count(o) == 3 && delta_get_base(o, "src/plain.txt", &b) &&
		  delta_get_base(o, weird, &w) && delta_get_base(o, "", &r);
	TAP_OK(ok && b.existed && b.mode == (S_IFREG | 0644) && b.ino == 42 && b.size == 7 &&
	       b.mtime.tv_sec == 100 && b.mtime.tv_nsec == 5 && b.ctime.tv_sec == 200 &&
	       b.ctime.tv_nsec == 6, "an existing path's record read back whole");
	TAP_OK(ok && !w.existed && r.existed && S_ISDIR(r.mode),
	       "a new path (escaped name) and the root read back");
	TAP_OK(o && strcmp(delta_path(o), path) == 0 && delta_upper_fd(o) >= 0,
	       "the opened delta is the same run directory");
	delta_free(steal_pointer(&o));

	TAP_OK(delta_open(state, path, "/other", &o, &err) == -EINVAL && !o,
	       "a run directory of another project is refused");
	autofree char *outside = xasprintf("%s/run-x", tmproot);
	TAP_OK(delta_open(state, outside, "/p", &o, &err) == -EINVAL && !o,
	       "a directory outside the state directory is refused");
	autofree char *nested = xasprintf("%s/upper", path);
	TAP_OK(delta_open(state, nested, "/p", &o, &err) == -EINVAL && !o,
	       "a directory below a run directory is refused");
	autofree char *gone = xasprintf("%s/run-gone", state);
	TAP_OK(delta_open(state, gone, "/p", &o, &err) == -ENOENT && !o,
	       "a run directory that is gone is ENOENT");

	autofree char *mpath = xasprintf("%s/manifest", path);
	FILE *f = fopen(mpath, "a");
	if (f) {
		fputs("E 100644 x 7 1.0 1.0 /bad\n", f);
		fclose(f);
	}
	TAP_OK(delta_open(state, path, "/p", &o, &err) == -EINVAL && !o,
	       "a malformed manifest record is refused: %s", err.msg);
	delta_remove(d, NULL);
	delta_free(d);
}

static void test_remove(void)
{
	autofree char *state = mktmp("remove");
	autofree char *outside = mktmp("remove-outside");
	autofree char *ofile = pj(outside, "precious");
	wfile(ofile, "keep me", 0644);
	struct delta *d = new_delta(state, "/p");
	autofree char *a = up(d, "a"), *ab = up(d, "a/b"), *abc = up(d, "a/b/c"),
		      *z = up(d, "z"), *zf = up(d, "z/f"), *l = up(d, "link"), *w = up(d, "wo");
	xmkdir(a, 0755);
	xmkdir(ab, 0755);
	wfile(abc, "c", 0000);
	chmod(ab, 0555);
	chmod(a, 0500);
	xmkdir(z, 0755);
	wfile(zf, "f", 0644);
	chmod(z, 0000);
	xsymlink(outside, l);
	whiteout(w);
	autofree char *run = xstrdup(delta_path(d));
	struct af_err err = { 0 };
	int r = delta_remove(d, &err);
	TAP_OK(r == 0 && !exists(run), "delta_remove removes read-only and unreadable dirs: %s",
	       err.msg);
	STREQ(rfile(ofile), "keep me", "a symlink's target outside is not touched");
	TAP_OK(delta_remove(d, &err) == 0, "delta_remove twice is harmless");
	delta_free(d);
}

/* The common case: every kind of change, no conflicts. */
static void test_sync_clean(void)
{
	autofree char *proj = mktmp("proj-clean");
	autofree char *state = mktmp("state-clean");
	struct af_err err = { 0 };
	struct stat st;

#define P(rel) autofree char *p_##rel = pj(proj, #rel)
	P(keep);
	P(mod);
	P(del);
	P(deldir);
	P(link);
	P(d2);
	P(f2);
	P(d3);
	P(src);
	P(newf);
	P(newdir);
	P(newlink);
	P(fifo);
	P(suid);
	P(ro);
#undef P
	autofree char *p_deldir_a = pj(proj, "deldir/a"), *p_deldir_sub = pj(proj, "deldir/sub"),
		      *p_deldir_sub_c = pj(proj, "deldir/sub/c"), *p_d2_f = pj(proj, "d2/f"),
		      *p_d3_old = pj(proj, "d3/old"), *p_src_x = pj(proj, "src/x.c");

	wfile(p_keep, "keep", 0644);
	wfile(p_mod, "old content", 0644);
	wfile(p_del, "delete me", 0644);
	xmkdir(p_deldir, 0755);
	wfile(p_deldir_a, "a", 0644);
	xmkdir(p_deldir_sub, 0755);
	wfile(p_deldir_sub_c, "c", 0644);
	xsymlink("keep", p_link);
	xmkdir(p_d2, 0755);
	wfile(p_d2_f, "f", 0644);
	wfile(p_f2, "file becoming a dir", 0644);
	xmkdir(p_d3, 0755);
	wfile(p_d3_old, "old", 0644);
	xmkdir(p_src, 0755);
	wfile(p_src_x, "x", 0644);
	xmkdir(p_ro, 0555);

	struct delta *d = new_delta(state, proj);
	/* the sandbox's changes, as the view records them */
	const char *touched[] = { "mod", "del", "deldir", "deldir/a", "deldir/sub", "deldir/sub/c",
				  "link", "d2", "d2/f", "f2", "f2/in", "d3", "d3/old", "d3/new",
				  "src/new.c", "newf", "newdir", "newdir/x", "newdir/y", "newdir/y/z",
				  "newlink", "fifo", "suid", "ro", "ro/made" };
	for (size_t i = 0; i < ARRAY_SIZE(touched); i++)
		note(d, proj, touched[i]);

	autofree char *u_mod = up(d, "mod"), *u_del = up(d, "del"), *u_deldir = up(d, "deldir"),
		      *u_link = up(d, "link"), *u_d2 = up(d, "d2"), *u_f2 = up(d, "f2"),
		      *u_f2_in = up(d, "f2/in"), *u_d3 = up(d, "d3"), *u_d3_old = up(d, "d3/old"),
		      *u_d3_new = up(d, "d3/new"), *u_src = up(d, "src"),
		      *u_src_new = up(d, "src/new.c"), *u_newf = up(d, "newf"),
		      *u_newdir = up(d, "newdir"), *u_newdir_x = up(d, "newdir/x"),
		      *u_newdir_y = up(d, "newdir/y"), *u_newdir_y_z = up(d, "newdir/y/z"),
		      *u_newlink = up(d, "newlink"), *u_fifo = up(d, "fifo"), *u_suid = up(d, "suid"),
		      *u_ro = up(d, "ro"), *u_ro_made = up(d, "ro/made");
	wfile(u_mod, "new content!", 0640);
	const struct timespec t[2] = { { 1000000000, 0 }, { 1000000000, 123456789 } };
	utimensat(AT_FDCWD, u_mod, t, 0);
	whiteout(u_del);
	whiteout(u_deldir);
	xsymlink("elsewhere", u_link);
	wfile(u_d2, "dir became a file", 0600);
	xmkdir(u_f2, 0750);
	wfile(u_f2_in, "in", 0644);
	xmkdir(u_d3, 0700);
	whiteout(u_d3_old);
	wfile(u_d3_new, "fresh", 0644);
	xmkdir(u_src, 0755);
	wfile(u_src_new, "int main;", 0644);
	wfile(u_newf, "brand new", 0600);
	xmkdir(u_newdir, 0751);
	wfile(u_newdir_x, "x", 0644);
	xmkdir(u_newdir_y, 0755);
	wfile(u_newdir_y_z, "z", 0444);
	utimensat(AT_FDCWD, u_newdir, t, 0);
	xsymlink("nowhere/../target", u_newlink);
	mkfifo(u_fifo, 0620);
	chmod(u_fifo, 0620);
	wfile(u_suid, "#!/bin/sh\n", 04755);
	xmkdir(u_ro, 0755);
	wfile(u_ro_made, "made in a read-only dir", 0644);
	chmod(u_ro, 0555);
	chmod(u_newdir_y, 0555); /* read-only dirs inside the delta */

	autofree char *run = xstrdup(delta_path(d));
	int pfd = open(proj, O_RDONLY | O_DIRECTORY);
	struct sync_report rep = { 0 };
	capture_start();
	int r = delta_sync(d, pfd, NULL, &rep, &err);
	autofree char *errout = capture_end();
	close(pfd);

	TAP_OK(r == 0, "clean sync returns 0: %s", r ? err.msg : "");
	TAP_OK(rep.conflicts == 0, "no conflicts (%lu)", rep.conflicts);
	STREQ(errout, "", "nothing on stderr");
	STREQ(rfile(p_keep), "keep", "untouched file stays");
	STREQ(rfile(p_mod), "new content!", "modified file synced");
	TAP_OK(lstat(p_mod, &st) == 0 && (st.st_mode & 07777) == 0640, "mode preserved (%o)",
	       st.st_mode & 07777);
	TAP_OK(st.st_mtim.tv_sec == 1000000000 && st.st_mtim.tv_nsec == 123456789, "mtime preserved");
	TAP_OK(!exists(p_del), "deleted file is gone");
	TAP_OK(!exists(p_deldir), "deleted directory tree is gone");
	char buf[64] = "";
	TAP_OK(readlink(p_link, buf, sizeof(buf) - 1) > 0 && strcmp(buf, "elsewhere") == 0,
	       "replaced symlink points to the new target");
	STREQ(rfile(p_d2), "dir became a file", "directory replaced by a file");
	TAP_OK(lstat(p_f2, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750,
	       "file replaced by a directory (mode %o)", st.st_mode & 07777);
	autofree char *p_f2_in = pj(proj, "f2/in");
	STREQ(rfile(p_f2_in), "in", "file inside the replacing directory");
	autofree char *p_d3_new = pj(proj, "d3/new");
	TAP_OK(!exists(p_d3_old) && rfile(p_d3_new) && strcmp(rfile(p_d3_new), "fresh") == 0,
	       "rm -rf + mkdir: old entry gone, new one there");
	TAP_OK(lstat(p_d3, &st) == 0 && (st.st_mode & 07777) == 0700, "recreated dir takes its mode");
	autofree char *p_src_new = pj(proj, "src/new.c");
	TAP_OK(rfile(p_src_new) && rfile(p_src_x), "new file in an existing dir, old one kept");
	TAP_OK(lstat(p_src, &st) == 0 && (st.st_mode & 07777) == 0755, "container dir mode untouched");
	STREQ(rfile(p_newf), "brand new", "new file created");
	autofree char *p_newdir_y_z = pj(proj, "newdir/y/z");
	STREQ(rfile(p_newdir_y_z), "z", "new nested directory with files");
	TAP_OK(lstat(p_newdir, &st) == 0 && (st.st_mode & 07777) == 0751 &&
		       st.st_mtim.tv_sec == 1000000000,
	       "new directory has the delta's mode and mtime");
	buf[0] = '\0';
	TAP_OK(readlink(p_newlink, buf, sizeof(buf) - 1) > 0 && strcmp(buf, "nowhere/../target") == 0,
	       "new dangling symlink created, not resolved");
	TAP_OK(lstat(p_fifo, &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0620,
	       "fifo created");
	TAP_OK(lstat(p_suid, &st) == 0 && (st.st_mode & 07777) == 0755, "set-ID bits are dropped");
	autofree char *p_ro_made = pj(proj, "ro/made");
	TAP_OK(rfile(p_ro_made) && lstat(p_ro, &st) == 0 && (st.st_mode & 07777) == 0555,
	       "file added to a read-only dir, the dir stays read-only");
	TAP_OK(rep.written >= 14 && rep.deleted >= 6, "report counts: %lu written, %lu deleted",
	       rep.written, rep.deleted);
	TAP_OK(!exists(run), "run dir removed after a clean sync");

	/* no temp files left in the project */
	autofree char *cmd = xasprintf("find '%s' -name '.agentfense-*' | grep -q .", proj);
	TAP_OK(system(cmd) != 0, "no temp files left in the project");
	delta_free(d);
	chmod(p_ro, 0755);
}

static void test_sync_conflicts(void)
{
	autofree char *proj = mktmp("proj-conflict");
	autofree char *state = mktmp("state-conflict");
	autofree char *outside = mktmp("outside");
	struct af_err err = { 0 };

	autofree char *p_c1 = pj(proj, "c1.txt"), *p_c2 = pj(proj, "c2.txt"), *p_dd = pj(proj, "dd"),
		      *p_dd_a = pj(proj, "dd/a"), *p_dd_host = pj(proj, "dd/hostnew"),
		      *p_sd = pj(proj, "sd"), *p_nb = pj(proj, "nb.txt"), *p_ok = pj(proj, "ok.txt"),
		      *p_rd = pj(proj, "rd"), *p_rd_f = pj(proj, "rd/f"), *p_rd_h = pj(proj, "rd/h"),
		      *p_gone = pj(proj, "gone.txt"), *o_file = pj(outside, "file");
	wfile(p_c1, "base", 0644);
	xmkdir(p_dd, 0755);
	wfile(p_dd_a, "a", 0644);
	xmkdir(p_sd, 0755);
	wfile(p_nb, "host", 0644);
	xmkdir(p_rd, 0755);
	wfile(p_rd_f, "f", 0644);
	wfile(p_gone, "g", 0644);

	struct delta *d = new_delta(state, proj);
	const char *touched[] = { "c1.txt", "c2.txt", "dd", "dd/a", "sd/file", "ok.txt", "rd", "rd/f",
				  "gone.txt" };
	for (size_t i = 0; i < ARRAY_SIZE(touched); i++)
		note(d, proj, touched[i]);

	autofree char *u_c1 = up(d, "c1.txt"), *u_c2 = up(d, "c2.txt"), *u_dd = up(d, "dd"),
		      *u_sd = up(d, "sd"), *u_sd_file = up(d, "sd/file"), *u_nb = up(d, "nb.txt"),
		      *u_ok = up(d, "ok.txt"), *u_rd = up(d, "rd"), *u_gone = up(d, "gone.txt");
	wfile(u_c1, "sandbox", 0644);
	wfile(u_c2, "sandbox c2", 0644);
	whiteout(u_dd);
	xmkdir(u_sd, 0755);
	wfile(u_sd_file, "through the link?", 0644);
	wfile(u_nb, "sandbox nb", 0644);
	wfile(u_ok, "fine", 0644);
	wfile(u_rd, "rd replaced", 0644);
	wfile(u_gone, "sandbox edit", 0644);

	/* meanwhile, on the host */
	wfile(p_c1, "host edit", 0644);
	wfile(p_c2, "host c2", 0644);
	wfile(p_dd_host, "host file", 0644);
	rmdir(p_sd);
	xsymlink(outside, p_sd);
	wfile(p_rd_h, "h", 0644);
	unlink(p_gone);

	autofree char *run = xstrdup(delta_path(d));
	int pfd = open(proj, O_RDONLY | O_DIRECTORY);
	struct sync_report rep = { 0 };
	capture_start();
	int r = delta_sync(d, pfd, NULL, &rep, &err);
	autofree char *errout = capture_end();
	close(pfd);

	TAP_OK(r == 0, "sync with conflicts returns 0: %s", r ? err.msg : "");
	TAP_OK(rep.conflicts == 7, "7 conflicts counted (%lu)", rep.conflicts);
	STREQ(rfile(p_c1), "host edit", "file changed on the host keeps the host version");
	STREQ(rfile(u_c1), "sandbox", "the delta keeps the sandbox version");
	autofree char *line = xasprintf("agentfense: conflict: 'c1.txt' changed in the project while "
					"the sandbox ran; the sandbox's version is kept in "
					"'%s/upper/c1.txt'\n",
					run);
	bool found = false;
	for (size_t i = 0; i < rep.n_notes; i++)
		found |= rep.notes[i].kind == SYNC_NOTE_CONFLICT &&
			 strcmp(rep.notes[i].path, "c1.txt") == 0 &&
			 strncmp(line + strlen("agentfense: "), rep.notes[i].text,
				 strlen(line) - strlen("agentfense: \n")) == 0 &&
			 strlen(rep.notes[i].text) == strlen(line) - strlen("agentfense: \n");
	TAP_OK(found, "conflict line in the report");
	autofree char *notes = xstrdup("");
	for (size_t i = 0; i < rep.n_notes; i++) {
		char *more = xasprintf("%s%s\n", notes, rep.notes[i].text);
		free(notes);
		notes = more;
	}
	STREQ(rfile(p_c2), "host c2", "file created on the host meanwhile is kept");
	STREQ(rfile(u_c2), "sandbox c2", "the sandbox's new file stays in the delta");
	TAP_OK(!exists(p_dd_a) && exists(p_dd_host), "deleted dir: sandbox-deleted entry gone, host file kept");
	TAP_OK(exists(u_dd) && strstr(notes, "'dd' changed"), "the dir's whiteout stays, conflict reported");
	TAP_OK(!exists(o_file), "a project symlink in place of a directory is not followed");
	TAP_OK(exists(u_sd_file) && strstr(notes, "'sd' changed"), "its content stays in the delta");
	STREQ(rfile(p_nb), "host", "no base record and the project has it: conflict");
	STREQ(rfile(p_ok), "fine", "non-conflicting entries still sync");
	TAP_OK(!exists(u_ok), "and leave the delta");
	TAP_OK(rfile(p_rd_f) && rfile(p_rd_h), "dir not fully covered is not replaced by a file");
	STREQ(rfile(u_rd), "rd replaced", "the replacing file stays in the delta");
	TAP_OK(!exists(p_gone) && exists(u_gone), "file deleted on the host while edited: conflict");
	autofree char *manifest = xasprintf("%s/manifest", run);
	TAP_OK(exists(run) && exists(manifest), "run dir and manifest kept after conflicts");
	TAP_OK(rep.n_notes == 7 && rep.notes_dropped == 0, "one note per conflict (%zu)",
	       rep.n_notes);
	STREQ(errout, "", "sync prints nothing");
	sync_report_free(&rep);
	delta_remove(d, NULL);
	delta_free(d);
}

/* An I/O error (as an ordinary user: a read-only project directory the
 * sandbox did not own), an O_PATH project fd, and a whiteout of a file
 * the sandbox created itself while the host made one of the same name. */
static void test_sync_error(void)
{
	autofree char *proj = mktmp("proj-error");
	autofree char *state = mktmp("state-error");
	autofree char *p_ro = pj(proj, "ro"), *p_tmpf = pj(proj, "tmpf"), *p_fine = pj(proj, "fine");
	struct af_err err = { 0 };
	xmkdir(p_ro, 0555);
	struct delta *d = new_delta(state, proj);
	note(d, proj, "ro/f");
	note(d, proj, "tmpf");
	note(d, proj, "fine");
	autofree char *u_ro = up(d, "ro"), *u_ro_f = up(d, "ro/f"), *u_tmpf = up(d, "tmpf"),
		      *u_fine = up(d, "fine");
	xmkdir(u_ro, 0755);
	wfile(u_ro_f, "f", 0644);
	whiteout(u_tmpf);
	wfile(u_fine, "fine", 0644);
	wfile(p_tmpf, "host's own", 0644);

	autofree char *run = xstrdup(delta_path(d));
	int pfd = open(proj, O_PATH | O_DIRECTORY);
	struct sync_report rep = { 0 };
	capture_start();
	int r = delta_sync(d, pfd, NULL, &rep, &err);
	autofree char *errout = capture_end();
	close(pfd);
	STREQ(rfile(p_tmpf), "host's own", "whiteout of a path the sandbox created keeps the host's");
	STREQ(rfile(p_fine), "fine", "sync through an O_PATH project fd");
	if (geteuid() == 0) {
		TAP_OK(r == 0 && !exists(run), "as root the read-only dir is writable: %s", err.msg);
	} else {
		TAP_OK(r == -EACCES && strstr(err.msg, "'ro/f' in the project") &&
			       strstr(err.msg, "Permission denied"),
		       "an I/O error names the path: %s", err.msg);
		TAP_OK(exists(run) && exists(u_ro_f) && !exists(u_fine),
		       "after an error the delta keeps what did not sync");
	}
	TAP_OK(rep.conflicts == 0 && rep.n_notes == 0, "no conflicts there");
	STREQ(errout, "", "sync prints nothing");
	sync_report_free(&rep);
	delta_remove(d, NULL);
	delta_free(d);
	chmod(p_ro, 0755);
}

/* The names git, or a file system git's repository may end up on, takes
 * for ".git"; sync holds an entry by any of them. */
static void test_dotgit_names(void)
{
	static const char *const yes[] = {
		".git", ".GIT", ".Git", ".git.", ".git ", ".git. . ", ".git::$INDEX_ALLOCATION",
		"git~1", "GIT~1", "Git~1.", ".g\xe2\x80\x8cit", "\xef\xbb\xbf.git",
		".\xe2\x81\xaaGIT\xe2\x80\xae", "x\\.git", ".git\\x", NULL,
	};
	static const char *const no[] = {
		"git", ".gitignore", ".github", ".gitmodules", ".git2", "git~2", "x.git", "..git",
		".g it", ".gi\xe2\x80\x8bt", "", ".", "gi~1", NULL,
	};
	for (size_t i = 0; yes[i]; i++) {
		autofree char *e = delta_escape(yes[i]);
		TAP_OK(hold_is_dotgit(yes[i]), "'%s' is taken for .git", e);
	}
	for (size_t i = 0; no[i]; i++) {
		autofree char *e = delta_escape(no[i]);
		TAP_OK(!hold_is_dotgit(no[i]), "'%s' is not taken for .git", e);
	}
}

int main(void)
{
	const char *td = getenv("TMPDIR");
	autofree char *t = xasprintf("%s/af-test-delta-XXXXXX", td && td[0] == '/' ? td : "/tmp");
	tmproot = mkdtemp(t);
	if (!tmproot) {
		perror(t);
		return 99;
	}
	umask(022);
	test_state_dir();
	test_create();
	test_base_records();
	test_threads();
	test_manifest();
	test_open();
	test_remove();
	test_sync_clean();
	test_sync_conflicts();
	test_sync_error();
	test_dotgit_names();

	autofree char *cmd = xasprintf("chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", tmproot, tmproot);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmproot);
	return tap_done();
}
