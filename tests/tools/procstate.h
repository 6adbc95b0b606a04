/* procstate.h - what the multibox and svcbox test tools count of this
 * process before and after their boxes, to show nothing was left behind
 * (fds, threads, mounts).  Included by each tool, which is one .c file. */
#ifndef AF_TESTS_TOOLS_PROCSTATE_H
#define AF_TESTS_TOOLS_PROCSTATE_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* Entries in a /proc/self directory (fds, threads), or -1. */
static long count_dir(const char *path)
{
	DIR *d = opendir(path);
	long n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (strcmp(path, "/proc/self/fd") == 0); /* opendir's own */
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "re");
	long n = 0;
	int c;
	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

struct counts {
	long fds, threads, mounts;
};

static void take_counts(struct counts *c)
{
	c->fds = count_dir("/proc/self/fd");
	c->threads = count_dir("/proc/self/task");
	c->mounts = count_lines("/proc/self/mountinfo");
}

#endif
