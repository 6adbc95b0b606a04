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
 * it would through a later open.
 *
 * The same table caches the fds nodes are read and written through when
 * no FUSE open gave one (kernel_permissions): opening the file afresh
 * for each request costs three system calls, and loses the file's
 * readahead state, which for a large file halves the throughput from a
 * cold disk.  Such a slot remembers its node and what the fd is good for
 * (FH_*); the node remembers the handle. */
#include "view/view_int.h"

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
	s->owner = NULL;
	s->kind = 0;
	s->gen = s->gen + 1 ? s->gen + 1 : 1;
	return fd;
}

/* An empty slot, or the least recently used idle one, emptied (its old
 * fd in *old, for the caller to close after unlocking); NULL if every
 * slot is busy.  Caller holds the lock. */
static struct fh_slot *slot_take(struct fh_table *t, int *old)
{
	struct fh_slot *best = NULL;
	*old = -1;
	for (unsigned i = 0; i < t->n; i++) {
		struct fh_slot *s = &t->s[i];
		if (s->fd < 0) {
			best = s;
			break;
		}
		if (s->busy == 0 && (!best || s->stamp < best->stamp))
			best = s;
	}
	if (best && best->fd >= 0)
		*old = slot_empty(best);
	return best;
}

/* Put fd in a slot (see slot_take) for owner, with kind, busy already
 * for one request if busy.  Returns its handle, or 0 when every slot is
 * busy (fd untouched). */
static uint64_t fh_insert(struct fh_table *t, int fd, const void *owner, unsigned kind,
			  bool busy)
{
	int old;
	uint64_t fh = 0;
	pthread_mutex_lock(&t->lock);
	struct fh_slot *s = slot_take(t, &old);
	if (s) {
		s->fd = fd;
		s->owner = owner;
		s->kind = kind;
		s->busy = busy;
		s->stamp = ++t->clock;
		fh = fh_of(t, (unsigned)(s - t->s));
	}
	pthread_mutex_unlock(&t->lock);
	if (old >= 0)
		close(old);
	return fh;
}

uint64_t vw_fh_add(struct fh_table *t, int fd)
{
	uint64_t fh = fh_insert(t, fd, NULL, 0, false);
	if (!fh)
		close(fd); /* every slot busy: the file goes without */
	return fh;
}

uint64_t vw_fh_cache(struct fh_table *t, int fd, const void *owner, unsigned kind)
{
	return fh_insert(t, fd, owner, kind, true);
}

int vw_fh_get_cached(struct fh_table *t, uint64_t fh, const void *owner, unsigned need,
		     unsigned refuse)
{
	int fd = -1;
	pthread_mutex_lock(&t->lock);
	struct fh_slot *s = fh_slot(t, fh);
	if (s && !s->dead && s->owner == owner && (s->kind & need) == need &&
	    !(s->kind & refuse)) {
		s->busy++;
		s->stamp = ++t->clock;
		fd = s->fd;
	}
	pthread_mutex_unlock(&t->lock);
	return fd;
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
