/* delta.h - the copy-on-write delta of one sandbox run.
 *
 * On disk a delta is a directory (the "run directory") holding
 *   upper/     files created or changed in the view, at their view path;
 *              a deletion of a project entry is a whiteout: a character
 *              device 0:0 with the entry's name (the overlayfs format;
 *              unprivileged users may create it since Linux 5.8)
 *   work/      scratch space on the same filesystem, for atomic copy-up
 *   manifest   written by delta_save(): the base records, one per line
 *   info       project path and creation time
 * A directory that replaces a deleted project directory is not marked
 * opaque: instead it holds a whiteout for every entry of the project
 * directory, so no extended attributes are needed.
 *
 * The base records say, for each project path the sandbox changed,
 * replaced or deleted, what that path looked like when the sandbox first
 * touched it; sync uses them to detect conflicts.
 *
 * A delta is used by one view (many threads: the functions below are
 * thread-safe) and afterwards by sync.  No global state. */
#ifndef AF_DELTA_H
#define AF_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/util.h"

struct delta;

/* The base of one project path, as the sandbox first saw it. */
struct delta_base {
	bool existed;     /* false: the path did not exist in the project */
	mode_t mode;      /* S_IFMT bits and permissions */
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

/* Directory holding run directories: $XDG_STATE_HOME/agentfense/runs,
 * else ~/.local/state/agentfense/runs.  Returns a malloc'd path, or NULL
 * with *err filled (no HOME). */
char *delta_state_dir(struct af_err *err);

/* Create a new run directory under state_dir (created if missing, mode
 * 0700) for the project at project_path.  Returns 0 or -errno. */
int delta_create(const char *state_dir, const char *project_path, struct delta **out,
		 struct af_err *err);
void delta_free(struct delta *d);
/* Open a run directory an earlier process left in state_dir (path: the
 * canonical state directory's entry run-...) to give it a fate: its
 * manifest's base records read back, none when it has none (a process
 * killed before it could save them: sync then takes every path the
 * project has as changed there meanwhile).  Its info must name
 * project_path.  Returns 0, or -errno with *err filled (-ENOENT: gone,
 * -EINVAL: not a run directory of state_dir for that project). */
int delta_open(const char *state_dir, const char *path, const char *project_path,
	       struct delta **out, struct af_err *err);

const char *delta_path(const struct delta *d);  /* run directory */
int delta_upper_fd(const struct delta *d);      /* O_DIRECTORY fd of upper/ */
int delta_work_fd(const struct delta *d);       /* O_DIRECTORY fd of work/ */
int delta_dir_fd(const struct delta *d);        /* O_DIRECTORY fd of the run directory */

/* Files the delta itself made for the sandbox to read (git's cleaned
 * configuration, gitprep.h): the view shows them read-only whatever the
 * policy says of their path.  Added before the view starts, read-only
 * after (so thread-safe then). */
void delta_add_shown(struct delta *d, const char *path);
bool delta_is_shown(const struct delta *d, const char *path);

/* Record the base of path (view path form, as in policy.h) unless one is
 * recorded already: the first touch wins.  st == NULL records "did not
 * exist".  Thread-safe. */
void delta_note_base(struct delta *d, const char *path, const struct stat *st);
/* Forget the base of path: the path left the delta (a sandbox's own
 * entry deleted, no whiteout left), so sync will never ask for it and
 * the record would only grow the table for as long as the run lasts.
 * Thread-safe. */
void delta_drop_base(struct delta *d, const char *path);
/* Look up a base record; returns true and fills *out if one exists. */
bool delta_get_base(const struct delta *d, const char *path, struct delta_base *out);

/* Number of base records.  Thread-safe. */
size_t delta_base_count(const struct delta *d);

/* The disk budget: how many bytes of allocated blocks (st_blocks, not
 * st_size: a sparse file costs what it holds) the sandbox may put in the
 * delta, 0 for no limit (the default of a fresh delta).  The view
 * reserves what an operation may allocate before it, then settles with
 * what the file actually grew or shrank by; sync writes no more than the
 * limit to the project.  Thread-safe. */
void delta_set_disk_limit(struct delta *d, uint64_t bytes);
uint64_t delta_disk_limit(const struct delta *d);
/* Reserve bytes.  Returns 0, or -ENOSPC (noted, see delta_disk_full())
 * when the limit would be passed. */
int delta_disk_reserve(struct delta *d, uint64_t bytes);
/* Replace a reservation by what the operation really allocated (freed,
 * if negative). */
void delta_disk_settle(struct delta *d, uint64_t reserved, int64_t actual);
/* What an entry of the delta other than a whiteout costs besides its
 * file data: a directory, symbolic link (plus its target's length),
 * special file or a name of a file, at the block a file system gives
 * the smallest of them (a directory on ext4; an inode and its name
 * elsewhere).  An object's user.* extended attributes cost their name
 * and value lengths plus one such block, where ext4 keeps them.
 * Whiteouts are free: they stand for a project entry, one per name at
 * most, so the project bounds them. */
#define DELTA_ENTRY_COST 4096
/* Bytes charged now; whether a reservation was ever refused. */
uint64_t delta_disk_used(const struct delta *d);
bool delta_disk_full(const struct delta *d);

/* Escape a path for one line of text (manifest, info, messages):
 * backslash, newline, tab and other control bytes become \\ \n \t
 * \xHH, every other byte is kept.  Returns a malloc'd string. */
char *delta_escape(const char *s);
/* The inverse; returns a malloc'd string, or NULL if s is malformed. */
char *delta_unescape(const char *s);

/* Write the manifest atomically (temp file + rename + fsync); its format
 * is documented at the top of delta.c.  Returns 0 or -errno. */
int delta_save(struct delta *d, struct af_err *err);
/* Remove the run directory and everything in it. Returns 0 or -errno. */
int delta_remove(struct delta *d, struct af_err *err);

/* True if st describes a whiteout (character device 0:0). */
static inline bool delta_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* One entry sync did not apply, for the caller to show (the CLI prints
 * text, and hint if any, on stderr; serve sends them). */
enum sync_note_kind {
	SYNC_NOTE_CONFLICT, /* changed in the project meanwhile, or there under another spelling */
	SYNC_NOTE_HELD,     /* held back: a repository's configuration, a symlink out */
	SYNC_NOTE_ERROR,    /* an I/O error after the first one (which is *err) */
	SYNC_NOTE_SKIPPED,  /* a device or socket: never copied to the project */
};

struct sync_note {
	enum sync_note_kind kind;
	char *path; /* the view path, escaped for one line (delta_escape()) */
	char *text; /* the whole message: one line, git style */
	char *hint; /* advice that goes with it, or NULL */
};

/* Notes a report holds at most; past it they are only counted, so a
 * delta of a million conflicts costs no more memory than this. */
#define SYNC_MAX_NOTES 10000

/* What sync did. */
struct sync_report {
	unsigned long written;   /* files, links and dirs created or replaced */
	unsigned long deleted;   /* project entries removed */
	unsigned long conflicts; /* entries left as the project has them (held too) */
	unsigned long errors;    /* I/O errors after the first */
	unsigned long skipped;   /* devices and sockets not copied */
	struct sync_note *notes; /* in the order sync met them */
	size_t n_notes;
	unsigned long notes_dropped; /* past SYNC_MAX_NOTES */
};

/* Free the notes of a report (the counts stay).  Idempotent. */
void sync_report_free(struct sync_report *rep);

/* Apply the delta to the project (project_fd: O_DIRECTORY fd of the
 * project root).  Conflicts, and entries held back (a repository or its
 * configuration for git or Mercurial, a symlink out of the project or to
 * a path policy hides below read; NULL policy: nothing is hidden), are
 * counted in rep->conflicts and described in rep->notes, and the
 * sandbox's version stays in the delta; entries that synced are removed
 * from the delta.  Nothing is printed.  *rep is overwritten (free it
 * with sync_report_free(), also after a failure).  When everything
 * synced the delta is removed, else saved (delta_save()).  Returns 0
 * (conflicts are not errors) or -errno with *err filled on an I/O
 * failure (the first; later ones are notes); never leaves a
 * half-written file in the project (temp file + rename). */
struct policy;
int delta_sync(struct delta *d, int project_fd, const struct policy *policy,
	       struct sync_report *rep, struct af_err *err);

#endif
