/* test_casefold.c - the name folding, and the directory helpers on the
 * case-sensitive file system the tests run on (a case-insensitive one
 * is casefold.bats's part, through casefs). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/casefold.h"
#include "tap.h"
#include "common/util.h"

static void fold_is(const char *in, const char *want)
{
	char *f = casefold_dup(in);
	TAP_STREQ(f, want, "casefold_dup('%s') is '%s'", in, want);
	free(f);
}

static void touch(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(name);
		abort();
	}
	close(fd);
}

int main(void)
{
	fold_is("", "");
	fold_is("README.md", "readme.md");
	fold_is(".GIT/Hooks/PRE-COMMIT", ".git/hooks/pre-commit");
	fold_is("server.\xe2\x84\xaa" "EY", "server.key");    /* KELVIN SIGN */
	fold_is("\xc5\xbf" "ecret\xc5\xbf", "secrets");       /* LONG S */
	fold_is("caf\xc3\x89", "caf\xc3\x89");                /* other letters stay */
	fold_is("\xe2\x84", "\xe2\x84");                       /* cut sequence */
	fold_is("[A-Z]*.KEY", "[a-z]*.key");

	char tmpl[] = "/tmp/af-test-casefold-XXXXXX";
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 1;
	}
	int dfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		perror(tmpl);
		return 1;
	}

	/* the test directory tells case apart (ext4, tmpfs, xfs...) */
	TAP_OK(!casefold_dir_may_fold(dfd), "an empty directory of the test file system does not fold");
	touch(dfd, "Makefile");
	touch(dfd, "server.key");
	TAP_OK(!casefold_dir_may_fold(dfd), "a directory of the test file system does not fold");
	TAP_OK(casefold_dir_probe(dfd) == 0, "the probe finds no other spelling");
	char probe[64];
	snprintf(probe, sizeof(probe), ".agentfense-Case-Probe.%ld", (long)getpid());
	struct stat st;
	TAP_OK(fstatat(dfd, probe, &st, 0) < 0 && errno == ENOENT,
	       "the probe leaves no entry behind");

	TAP_OK(casefold_dir_has_clash(dfd, "MAKEFILE") == 1, "MAKEFILE clashes with Makefile");
	TAP_OK(casefold_dir_has_clash(dfd, "Makefile") == 0, "a name does not clash with itself");
	TAP_OK(casefold_dir_has_clash(dfd, "server.\xe2\x84\xaa" "ey") == 1,
	       "server.<KELVIN SIGN>ey clashes with server.key");
	TAP_OK(casefold_dir_has_clash(dfd, "other") == 0, "a new name clashes with nothing");

	struct casefold_names *c = casefold_names_new();
	TAP_OK(casefold_names_has(c, dfd, "Makefile") == 1, "Makefile is spelled so");
	TAP_OK(casefold_names_has(c, dfd, "makefile") == 0, "makefile is not");
	/* directory times may be as coarse as a clock tick (ext4 before
	 * Linux 6.13): change the directory in a later one */
	usleep(20000);
	touch(dfd, "makefile");
	TAP_OK(casefold_names_has(c, dfd, "makefile") == 1,
	       "a name made since is found: the directory's times changed");
	usleep(20000);
	unlinkat(dfd, "Makefile", 0);
	TAP_OK(casefold_names_has(c, dfd, "Makefile") == 0, "a name removed since is not");
	casefold_names_free(c);
	casefold_names_free(NULL);

	close(dfd);
	char *cmd = xasprintf("rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", tmpl);
	free(cmd);
	return tap_done();
}
