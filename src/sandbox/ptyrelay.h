/* ptyrelay.h - connect the user's terminal to the pseudo-terminal of a
 * sandbox (`agentfense shell`, and `run` when a standard stream is a
 * terminal).
 *
 * The command runs on a pty of the sandbox's own devpts (sandbox_pty());
 * agentfense holds the master and copies bytes both ways, like ssh -t:
 * the user's terminal is put in raw mode, so Ctrl-C, Ctrl-Z and the
 * rest reach the pty's line discipline, which signals the sandboxed
 * foreground job (agentfense itself never stops or dies of them).  The
 * terminal is restored on every way out: return, exit(), fatal signals.
 *
 * Without a terminal on stdin the command still gets its pty; input is
 * read from stdin, and its end becomes an end-of-file character (VEOF).
 *
 * For `run` (PTYRELAY_RUN) the pty stands in for the user's terminal
 * only where a standard stream is one, and agentfense stays a job of
 * the user's shell: the terminal is raw, and read, only while
 * agentfense is in its foreground; a run in the background reads
 * nothing (its command waits for input until `fg`).  Ctrl-Z (the pty's
 * suspend character, while the pty generates signals) stops the
 * command's whole group and agentfense, as SIGTSTP does; SIGCONT
 * resumes both, raw again if in the foreground.
 *
 * The caller blocks SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD and
 * SIGWINCH in every thread before starting any (as cmd_run does), and
 * with PTYRELAY_RUN also SIGTSTP and SIGCONT.
 *
 * For the CLI only: the user's terminal is the process's, so
 * ptyrelay_begin() installs an atexit handler and handlers for fatal
 * signals that restore it, and ptyrelay_wait() reads the process's
 * signals.  A process hosting many sandboxes (serve) relays no user's
 * terminal with it. */
#ifndef AF_PTYRELAY_H
#define AF_PTYRELAY_H

#include "sandbox/sandbox.h"
#include "common/util.h"

enum ptyrelay_mode {
	PTYRELAY_SHELL, /* the pty is the command's whole terminal */
	PTYRELAY_RUN,   /* it stands in for the user's terminal in a job */
};

/* The first of fds 0-2 that is a terminal, or -1. */
int ptyrelay_terminal(void);

/* Before the command starts: give the pty the settings and window size
 * of the user's terminal (stdin's; for PTYRELAY_RUN, ptyrelay_terminal()'s;
 * 24x80 without one), then put the terminal on stdin in raw mode (for
 * PTYRELAY_RUN only if agentfense is in its foreground).  master stays
 * the caller's.  Returns 0, or -errno with *err filled. */
int ptyrelay_begin(int master, enum ptyrelay_mode mode, struct af_err *err);

/* Relay stdin -> master and master -> stdout until the command ends,
 * with sandbox_wait()'s contract and result.  A window size change
 * (SIGWINCH) is passed on; SIGTERM or SIGHUP hang the pty up, as a
 * closed terminal window would (the shell and its jobs get SIGHUP), and
 * whatever still runs two seconds later is killed; SIGINT and SIGQUIT
 * are forwarded as sandbox_wait() does.  With PTYRELAY_RUN, output goes
 * to ptyrelay_terminal(), input is read only from a terminal on stdin,
 * and every signal is forwarded as sandbox_wait() does.  The command's output is read
 * to its end, and the terminal restored, before this returns.  Takes
 * ownership of master. */
int ptyrelay_wait(struct sandbox *sb, int master, enum ptyrelay_mode mode, double timeout,
		  struct sandbox_result *res, struct af_err *err);

/* Put the terminal back as ptyrelay_begin() found it.  Idempotent and
 * async-signal-safe. */
void ptyrelay_restore(void);

#endif
