/* view_fh.c - handles of files created through the FUSE view (see
 * view_int.h).
 *
 * With kernel_permissions the view answers FUSE opens with ENOSYS, and
 * from then on the kernel sends no release for any file, not even one
 * made by a FUSE create, whose reply must carry an open file.  A raw fd
 * as that file's handle would stay open for the rest of the run, one
 * per file the sandbox creates.  So a created file's handle names a slot
 * of a small table instead (slot and generation): the table keeps at
 * most FH_SLOTS fds, and recycles the least recently used idle one when
 * full.  I/O on a handle whose slot was recycled opens the node afresh
 * (as for fh 0), which differs only for a file whose own mode forbids
 * the access its creator opened it for: that then fails with EACCES, as
 * it would through a later open. */
#include "view_int.h"

#include <stdlib.h>
#include <unistd.h>

void vw_fh_init(struct fh_table *t, unsigned nslots)
{
	pthread_mutex_init(&t->lock, NULL);
	t->n = nslots ? nslots : 1;
	t->s = xcalloc(t->n, sizeof(*t->s));
	for (unsigned i = 0; i < t->n; i++) {
		t->s[i].fd = -1;
		t->s[i].gen = 1;
	}
}

void vw_fh_destroy(struct fh_table *t)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->s[i].fd >= 0)
			close(t->s[i].fd);
	free(t->s);
	t->s = NULL;
	pthread_mutex_destroy(&t->lock);
}

static uint64_t fh_of(const struct fh_table *t, unsigned i)
{
	return ((uint64_t)t->s[i].gen << 32) | (i + 1);
}

/* The slot fh names, if it is still the one given out; caller holds the
 * lock. */
static struct fh_slot *fh_slot(struct fh_table *t, uint64_t fh)
{
	uint64_t i = (fh & 0xffffffffULL);
	if (i == 0 || i > t->n)
		return NULL;
	struct fh_slot *s = &t->s[i - 1];
	return s->gen == (uint32_t)(fh >> 32) && s->fd >= 0 ? s : NULL;
}

/* Empty the slot; returns its fd, for the caller to close once it has
 * dropped the lock (every read and write takes it). */
static int slot_empty(struct fh_slot *s)
{
	int fd = s->fd;
	s->fd = -1;
	s->dead = false;
	s->gen = s->gen + 1 ? s->gen + 1 : 1;
	return fd;
}

uint64_t vw_fh_add(struct fh_table *t, int fd)
{
	pthread_mutex_lock(&t->lock);
	struct fh_slot *best = NULL;
	for (unsigned i = 0; i < t->n; i++) {
		struct fh_slot *s = &t->s[i];
		if (s->fd < 0) {
			best = s;
			break;
		}
		if (s->busy == 0 && (!best || s->stamp < best->stamp))
			best = s;
	}
	uint64_t fh = 0;
	int old = fd; /* every slot busy: the file goes without */
	if (best) {
		old = best->fd >= 0 ? slot_empty(best) : -1;
		best->fd = fd;
		best->stamp = ++t->clock;
		fh = fh_of(t, (unsigned)(best - t->s));
	}
	pthread_mutex_unlock(&t->lock);
	if (old >= 0)
		close(old);
	return fh;
}

int vw_fh_get(struct fh_table *t, uint64_t fh)
{
	int fd = -1;
	pthread_mutex_lock(&t->lock);
	struct fh_slot *s = fh_slot(t, fh);
	if (s && !s->dead) {
		s->busy++;
		s->stamp = ++t->clock;
		fd = s->fd;
	}
	pthread_mutex_unlock(&t->lock);
	return fd;
}

void vw_fh_put(struct fh_table *t, uint64_t fh)
{
	int fd = -1;
	pthread_mutex_lock(&t->lock);
	struct fh_slot *s = fh_slot(t, fh);
	if (s && --s->busy == 0 && s->dead)
		fd = slot_empty(s);
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
}

void vw_fh_release(struct fh_table *t, uint64_t fh)
{
	int fd = -1;
	pthread_mutex_lock(&t->lock);
	struct fh_slot *s = fh_slot(t, fh);
	if (s) {
		if (s->busy == 0)
			fd = slot_empty(s);
		else
			s->dead = true;
	}
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
}
