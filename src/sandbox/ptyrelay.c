/* ptyrelay.c - the user's terminal <-> the sandbox's pty (see ptyrelay.h).
 *
 * One poll() loop over stdin, the pty master, a signalfd (window size,
 * hang-up, forwarded signals) and the sandbox's control socket.  The
 * control socket speaks only when the command is over (or could not
 * start), so once it is readable sandbox_wait() takes over; the pty's
 * remaining output is read after the sandbox is gone, when nothing can
 * write to it any more. */
#include "sandbox/ptyrelay.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>

/* After a hang-up, how long the shell has to exit before the sandbox
 * is killed (a job that ignores SIGHUP must not keep it alive). */
#define HANGUP_GRACE 2.0

/* After the end of piped input, how often to look whether the command
 * waits for more (to give it an end-of-file), and how long to leave a
 * non-canonical reader (readline) with one before giving another. */
#define EOF_TICK 0.05
#define EOF_REPEAT 0.5

/* PTYRELAY_RUN in the background: how often to look whether the shell
 * brought us to the foreground (its fg sends no SIGCONT to a job that
 * runs). */
#define FOREGROUND_TICK 0.1

/* Window size of a pty whose user has no terminal. */
#define DEFAULT_ROWS 24
#define DEFAULT_COLS 80

/* The terminal as we found it: read by signal handlers and atexit. */
static struct termios saved_termios;
static volatile sig_atomic_t raw_fd = -1;

void ptyrelay_restore(void)
{
	int fd = raw_fd;
	if (fd < 0)
		return;
	raw_fd = -1;
	int e = errno;
	tcsetattr(fd, TCSADRAIN, &saved_termios);
	errno = e;
}

static void restore_at_exit(void)
{
	ptyrelay_restore();
}

/* Signals that end the process while the terminal is raw.  SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT are blocked and read from the loop;
 * SIGKILL cannot be caught, and leaves the terminal raw ('reset' or
 * 'stty sane' repairs it). */
static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS,
				     SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
				     SIGXFSZ };
static struct sigaction old_actions[NSIG];

static void on_fatal(int sig, siginfo_t *si, void *uc AF_UNUSED)
{
	ptyrelay_restore();
	sigaction(sig, &old_actions[sig], NULL);
	/* A fault (si_code > 0, from the kernel) recurs when the handler
	 * returns, reaching the previous handler (a sanitizer's); anything
	 * else is raised again. */
	if (si->si_code <= 0)
		raise(sig);
}

static void catch_fatal_signals(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	atexit(restore_at_exit);
	struct sigaction sa = { .sa_sigaction = on_fatal, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(fatal_signals); i++)
		sigaction(fatal_signals[i], &sa, &old_actions[fatal_signals[i]]);
	/* a closed stdout is noticed by write(): EPIPE, not death */
	signal(SIGPIPE, SIG_IGN);
}

/* Give the pty the window size terminal tty has now. */
static void copy_winsize(int tty, int master)
{
	struct winsize ws;
	if (ioctl(tty, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

int ptyrelay_terminal(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (isatty(fd))
			return fd;
	return -1;
}

/* Put the terminal on stdin in raw mode, saving its settings for
 * ptyrelay_restore().  Returns 0, or -errno with *err filled. */
static int enter_raw(struct af_err *err)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &t) < 0)
		return af_err_set(err, errno, "cannot read the terminal's settings: %s",
				  strerror(errno));
	saved_termios = t;
	cfmakeraw(&t);
	raw_fd = STDIN_FILENO;
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0) {
		raw_fd = -1;
		return af_err_set(err, errno, "cannot put the terminal in raw mode: %s",
				  strerror(errno));
	}
	return 0;
}

/* Whether our process group may read the terminal on stdin: it is the
 * terminal's foreground group, or the terminal is not our controlling
 * one (no job control applies to it). */
static bool in_foreground(void)
{
	pid_t pg = tcgetpgrp(STDIN_FILENO);
	return pg < 0 ? errno == ENOTTY : pg == getpgrp();
}

/* PTYRELAY_RUN: raw while in the foreground, when stdin is a terminal.
 * A background job that changed the terminal's settings would be
 * stopped (SIGTTOU), and must leave them to the foreground one. */
static void raw_if_foreground(void)
{
	struct af_err ignored = { 0 };
	if (raw_fd < 0 && isatty(STDIN_FILENO) && in_foreground())
		(void)enter_raw(&ignored); /* without it: the terminal stays as it is */
}

int ptyrelay_begin(int master, enum ptyrelay_mode mode, struct af_err *err)
{
	struct termios t;
	int tty = mode == PTYRELAY_RUN ? ptyrelay_terminal() : STDIN_FILENO;

	catch_fatal_signals();
	if (tty < 0 || tcgetattr(tty, &t) < 0) {
		/* no terminal: the pty keeps the kernel's settings */
		struct winsize ws = { .ws_row = DEFAULT_ROWS, .ws_col = DEFAULT_COLS };
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			return af_err_set(err, errno, "cannot set the terminal's size: %s",
					  strerror(errno));
		return 0;
	}
	/* The user's erase, kill and interrupt characters work inside
	 * (on a pty master, these ioctls act on the slave's settings). */
	if (tcsetattr(master, TCSANOW, &t) < 0)
		return af_err_set(err, errno, "cannot set up the terminal: %s", strerror(errno));
	copy_winsize(tty, master);
	if (mode == PTYRELAY_RUN) {
		raw_if_foreground();
		return 0;
	}
	return enter_raw(err);
}

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct relay {
	enum ptyrelay_mode mode;
	int tty;         /* the user's terminal, for its window size */
	int out;         /* where the pty's output goes */
	bool suspend;    /* PTYRELAY_RUN: Ctrl-Z was typed */
	int master;      /* -1 once hung up */
	bool master_eof; /* every slave fd is closed: nothing more to read */
	bool in_eof;     /* stdin is done */
	bool in_tty;
	bool out_ok;     /* stdout still takes output */
	char last_out;   /* the last byte written to stdout */
	char in[4096];   /* read from stdin, not yet written to the pty */
	size_t in_len, in_off;
	double kill_at;  /* after a hang-up: when to kill the sandbox */
	/* after the end of piped input (see feed_eof) */
	int slave;       /* the pty's slave, to see what is left unread; or -1 */
	bool canon_eof_sent;
	double next_raw_eof;
};

/* Copy what the pty has to stdout.  Returns false when there is nothing
 * more to read for now (EAGAIN), or ever (EIO: every slave fd closed). */
static bool pump_output(struct relay *r)
{
	char buf[16384];
	ssize_t n = read(r->master, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		if (n == 0 || errno != EAGAIN)
			r->master_eof = true;
		return false;
	}
	if (r->out_ok && write_all(r->out, buf, (size_t)n) < 0)
		r->out_ok = false; /* keep reading: the command must not block */
	r->last_out = buf[n - 1];
	return true;
}

static void drain_output(struct relay *r)
{
	while (r->master >= 0 && !r->master_eof && pump_output(r))
		;
}

/* Hang the pty up: the kernel sends SIGHUP to the shell (the session
 * leader) and the foreground job, as for a closed terminal window. */
static void hang_up(struct relay *r)
{
	if (r->master < 0)
		return;
	close(r->master);
	r->master = -1;
	r->in_eof = true;
	r->kill_at = now_sec() + HANGUP_GRACE;
}

/* PTYRELAY_RUN: keep what comes before the pty's suspend character,
 * if it generates signals, and note the Ctrl-Z.  Inside, the command's
 * group has no job control (its parent is outside its session): the
 * kernel would drop the SIGTSTP.  Returns the length to keep. */
static size_t find_suspend(struct relay *r, size_t n)
{
	struct termios t;
	if (r->mode != PTYRELAY_RUN || tcgetattr(r->master, &t) < 0 || !(t.c_lflag & ISIG) ||
	    t.c_cc[VSUSP] == _POSIX_VDISABLE)
		return n;
	char *z = memchr(r->in, t.c_cc[VSUSP], n);
	if (!z)
		return n;
	r->suspend = true;
	return (size_t)(z - r->in); /* typed after it: dropped, as a terminal flushes */
}

static void read_input(struct relay *r)
{
	ssize_t n = read(STDIN_FILENO, r->in, sizeof(r->in) - 1);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		r->in_len = find_suspend(r, (size_t)n);
		r->in_off = 0;
		return;
	}
	r->in_eof = true;
	if (r->mode == PTYRELAY_RUN)
		return; /* the terminal is gone: its SIGHUP is forwarded */
	if (r->in_tty) {
		/* a raw terminal reads 0 or EIO only once it is gone */
		hang_up(r);
		return;
	}
	/* the end of piped input: feed_eof() takes over */
	r->slave = ioctl(r->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

/* After the end of piped input, every read of the pty should end, as
 * at the end of a file: send the end-of-file character (VEOF) whenever
 * the command has read everything.  The line discipline turns it into
 * an end of file only in canonical mode, and a shell using readline
 * switches modes around each command: a VEOF sent while it runs one
 * reaches readline as a NUL byte.  So: one VEOF per stretch of
 * canonical mode, and in non-canonical mode (readline reading, which
 * takes the byte itself as the end on an empty line) one every
 * EOF_REPEAT seconds while all is read. */
static void feed_eof(struct relay *r)
{
	struct termios t;
	int unread;

	if (r->slave < 0 || r->master < 0 || r->in_len)
		return;
	if (tcgetattr(r->master, &t) < 0 || ioctl(r->slave, TIOCINQ, &unread) < 0 || unread > 0)
		return;
	if (t.c_lflag & ICANON) {
		if (r->canon_eof_sent)
			return;
		r->canon_eof_sent = true;
	} else {
		r->canon_eof_sent = false;
		double now = now_sec();
		if (now < r->next_raw_eof)
			return;
		r->next_raw_eof = now + EOF_REPEAT;
	}
	r->in[0] = t.c_cc[VEOF] ? (char)t.c_cc[VEOF] : 4;
	r->in_len = 1;
	r->in_off = 0;
}

static void write_input(struct relay *r)
{
	ssize_t n = write(r->master, r->in + r->in_off, r->in_len - r->in_off);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		r->in_len = r->in_off = 0; /* the pty is gone: drop it */
		r->in_eof = true;
		return;
	}
	r->in_off += (size_t)n;
	if (r->in_off == r->in_len)
		r->in_len = r->in_off = 0;
}

/* PTYRELAY_RUN, Ctrl-Z or SIGTSTP: stop the command's whole group (PID
 * 1 does), give the terminal back as it was, and stop, as the shell
 * expects of its job.  Its fg or bg continues us with a SIGCONT, read
 * by handle_signals(). */
static void stop_run(struct relay *r, struct sandbox *sb)
{
	r->suspend = false;
	sandbox_forward_signal(sb, SIGTSTP, SI_USER);
	ptyrelay_restore();
	raise(SIGSTOP);
}

static void handle_signals(struct relay *r, struct sandbox *sb, int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGWINCH:
			if ((r->in_tty || r->mode == PTYRELAY_RUN) && r->tty >= 0 && r->master >= 0)
				copy_winsize(r->tty, r->master);
			break;
		case SIGTSTP:
			stop_run(r, sb);
			break;
		case SIGCONT:
			sandbox_forward_signal(sb, SIGCONT, si.ssi_code);
			raw_if_foreground();
			break;
		case SIGTERM:
		case SIGHUP:
			if (r->mode == PTYRELAY_RUN)
				sandbox_forward_signal(sb, (int)si.ssi_signo, si.ssi_code);
			else
				hang_up(r);
			break;
		default:
			sandbox_forward_signal(sb, (int)si.ssi_signo, si.ssi_code);
			break;
		}
	}
}

int ptyrelay_wait(struct sandbox *sb, int master, enum ptyrelay_mode mode, double timeout,
		  struct sandbox_result *res, struct af_err *err)
{
	struct relay r = { .mode = mode, .tty = STDIN_FILENO, .out = STDOUT_FILENO,
			   .master = master, .in_tty = isatty(STDIN_FILENO), .out_ok = true,
			   .slave = -1 };
	sigset_t set;
	int ret = 0;

	if (mode == PTYRELAY_RUN) {
		/* stdin that is no terminal is the command's own */
		r.in_eof = !r.in_tty;
		r.tty = ptyrelay_terminal();
		/* no terminal for output: the echo of typing goes to stdin's */
		r.out = isatty(STDOUT_FILENO) ? STDOUT_FILENO
			: isatty(STDERR_FILENO) ? STDERR_FILENO
						: STDIN_FILENO;
	}

	memset(res, 0, sizeof(*res));
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGWINCH);
	if (mode == PTYRELAY_RUN) {
		sigaddset(&set, SIGTSTP);
		sigaddset(&set, SIGCONT);
	}
	/* ours alone, unlike stdin and stdout, which we share */
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	autoclose int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		ret = af_err_set(err, errno, "cannot create a signalfd: %s", strerror(errno));
		sandbox_kill(sb);
		goto out;
	}

	double deadline = timeout > 0 ? now_sec() + timeout : 0;
	for (;;) {
		struct pollfd pfd[4] = {
			{ .fd = sandbox_fd(sb), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = r.master >= 0 && !r.master_eof ? r.master : -1,
			  .events = (short)(POLLIN | (r.in_len ? POLLOUT : 0)) },
			/* a run reads only in the foreground (raw): a job in the
			 * background must leave the typing to the foreground */
			{ .fd = !r.in_eof && !r.in_len && !r.master_eof &&
						(mode == PTYRELAY_SHELL || raw_fd >= 0)
					? STDIN_FILENO
					: -1,
			  .events = POLLIN },
		};
		double until = deadline;
		if (r.kill_at > 0 && (until == 0 || r.kill_at < until))
			until = r.kill_at;
		bool waiting_fg = mode == PTYRELAY_RUN && r.in_tty && !r.in_eof && raw_fd < 0;
		if ((r.slave >= 0 && r.master >= 0) || waiting_fg) {
			double tick = now_sec() + (waiting_fg ? FOREGROUND_TICK : EOF_TICK);
			if (until == 0 || tick < until)
				until = tick;
		}
		int ms = -1;
		if (until > 0) {
			double left = until - now_sec();
			ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
		}
		int n = poll(pfd, ARRAY_SIZE(pfd), ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = af_err_set(err, errno, "cannot wait for the sandbox: %s",
					 strerror(errno));
			sandbox_kill(sb);
			goto out;
		}
		double now = now_sec();
		if (deadline > 0 && now >= deadline) {
			if (sandbox_time_term(sb)) {
				deadline = now + sandbox_kill_after(sb);
				continue;
			}
			sandbox_time_up(sb, res);
			goto out;
		}
		if (r.kill_at > 0 && now >= r.kill_at) {
			sandbox_kill(sb); /* sandbox_wait() reports how it ended */
			break;
		}
		if (pfd[1].revents & POLLIN)
			handle_signals(&r, sb, sfd);
		if (r.master >= 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
			pump_output(&r);
		if (r.master >= 0 && r.in_len && (pfd[2].revents & POLLOUT))
			write_input(&r);
		if (pfd[3].revents & (POLLIN | POLLHUP | POLLERR))
			read_input(&r);
		if (r.suspend)
			stop_run(&r, sb);
		feed_eof(&r);
		if (waiting_fg)
			raw_if_foreground();
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			/* a note from PID 1 (the pids limit reached), or the
			 * end: the command is over, or could not start */
			int s = sandbox_step(sb, res, err);
			if (s != 0) {
				ret = s < 0 ? s : 0;
				goto out;
			}
		}
	}
	double left = 0;
	if (deadline > 0 && (left = deadline - now_sec()) <= 0)
		left = 0.001;
	ret = sandbox_wait(sb, left, res, err);
out:
	drain_output(&r); /* the sandbox is gone: this ends */
	ptyrelay_restore();
	/* what agentfense says next starts on a line of its own */
	if (mode == PTYRELAY_SHELL && r.last_out && r.last_out != '\n' && r.out_ok &&
	    isatty(STDOUT_FILENO))
		(void)!write(STDOUT_FILENO, "\n", 1);
	if (r.master >= 0)
		close(r.master);
	if (r.slave >= 0)
		close(r.slave);
	return ret;
}
