#!/usr/bin/env python3
"""ptydrive.py - run a command on a pseudo-terminal and drive it like a
person at a keyboard, for the tests of `agentfense shell`.

usage: ptydrive.py [--rows N] [--cols N] [--timeout S] STEP... -- COMMAND [ARG...]

The command runs in a session of its own with the pty as its controlling
terminal (so the kernel sends it SIGWINCH, and Ctrl-C would reach it were
the terminal not raw).  Steps, in order:

  send TEXT        type TEXT (Python escapes: \\r, \\x03 for Ctrl-C, ...)
  expect REGEX     wait until the output since the last match matches
                   (multi-line: ^ and $ match at each line)
  sleep SECONDS
  resize RxC       set the terminal's size to R rows and C columns
  signal NAME      send signal NAME (TERM, HUP, ...) to the command
  waitproc COMM    wait until a process named COMM runs below the command
  kill COMM NAME   send signal NAME to the processes named COMM below it
  running          fail if the command is stopped (state T in /proc)
  state COMM STATES  wait until the processes named COMM below the
                   command (COMM "-": the command itself) are all in one
                   of STATES, e.g. T (stopped) or SR (not stopped)
  raw              fail unless the terminal is in raw mode (no ICANON/ECHO)

Then it waits for the command to exit and prints the output (escape
sequences and carriage returns removed), then "@@ exit N" or "@@ signal
N", and "@@ termios same" or "@@ termios changed" comparing the
terminal's settings before and after.  A step that fails or times out
prints "@@ FAIL: ..." and the output so far, kills the command and exits
1.  Standard library only.
"""
import errno
import fcntl
import os
import re
import select
import signal
import struct
import sys
import termios
import time

CSI = re.compile(rb'\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]')


class Fail(Exception):
    pass


def clean(data):
    return CSI.sub(b'', data).replace(b'\r', b'').decode('utf-8', 'replace')


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))


def descendants(root):
    kids = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d, 'rb') as f:
                st = f.read()
            ppid = int(st[st.rindex(b')') + 2:].split()[1])
            with open('/proc/%s/comm' % d) as f:
                comm = f.read().strip()
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append((int(d), comm))
    out, todo = [], [root]
    while todo:
        for pid, comm in kids.get(todo.pop(), []):
            out.append((pid, comm))
            todo.append(pid)
    return out


def proc_state(pid):
    with open('/proc/%d/stat' % pid, 'rb') as f:
        st = f.read()
    return st[st.rindex(b')') + 2:].split()[0].decode()


def signum(name):
    return getattr(signal, 'SIG' + name.upper().removeprefix('SIG'))


class Driver:
    def __init__(self, argv, rows, cols, timeout):
        self.master, self.slave = os.openpty()
        set_size(self.slave, rows, cols)
        self.before = termios.tcgetattr(self.slave)
        self.out = b''
        self.mark = 0
        self.status = None
        self.deadline = time.monotonic() + timeout
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setsid()
                fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(self.slave, fd)
                os.close(self.master)
                os.close(self.slave)
                os.execvp(argv[0], argv)
            except OSError as e:
                os.write(2, ('ptydrive: cannot run %s: %s\n' % (argv[0], e)).encode())
            os._exit(127)

    def pump(self, seconds, until_data=False):
        """Read output for up to seconds (less if the command exits, or
        with until_data once something was read)."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            r, _, _ = select.select([self.master], [], [], max(0, min(left, 0.05)))
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
            if not r and self.status is None:
                pid, st = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.status = st
            if left <= 0 or (self.status is not None and not r) or (r and until_data):
                return

    def check_time(self, what):
        if time.monotonic() > self.deadline:
            raise Fail('timed out (%s)' % what)

    def step_send(self, text):
        data = text.encode().decode('unicode_escape').encode('latin-1')
        os.write(self.master, data)
        self.pump(0.05)

    def step_expect(self, regex, timeout=10):
        rx = re.compile(regex, re.M)
        end = time.monotonic() + timeout
        while True:
            # cleaned text only grows at its end (a sequence cut in two
            # is completed there), so the mark is an offset into it
            m = rx.search(clean(self.out), self.mark)
            if m:
                self.mark = m.end()
                return
            if time.monotonic() > end or self.status is not None:
                raise Fail('expected %r' % regex)
            self.check_time('expect %r' % regex)
            self.pump(0.1, until_data=True)

    def step_sleep(self, seconds):
        self.pump(float(seconds))

    def step_resize(self, spec):
        rows, cols = (int(x) for x in spec.split('x'))
        set_size(self.master, rows, cols)
        self.pump(0.05)

    def step_signal(self, name):
        os.kill(self.pid, signum(name))
        self.pump(0.05)

    def step_waitproc(self, comm, timeout=10):
        end = time.monotonic() + timeout
        while not any(c == comm for _, c in descendants(self.pid)):
            if time.monotonic() > end:
                raise Fail('no process %r appeared' % comm)
            self.pump(0.05)

    def step_kill(self, comm, name):
        pids = [p for p, c in descendants(self.pid) if c == comm]
        if not pids:
            raise Fail('no process %r to kill' % comm)
        for p in pids:
            os.kill(p, signum(name))
        self.pump(0.05)

    def step_state(self, comm, states, timeout=10):
        end = time.monotonic() + timeout
        while True:
            pids = [self.pid] if comm == '-' else \
                [p for p, c in descendants(self.pid) if c == comm]
            try:
                now = [proc_state(p) for p in pids]
            except OSError:
                now = []
            if now and all(st in states for st in now):
                return
            if time.monotonic() > end:
                raise Fail('%s: state %s, not in %r' % (comm, ''.join(now) or 'gone', states))
            self.pump(0.05)

    def step_running(self):
        state = proc_state(self.pid)
        if state in ('T', 't'):
            raise Fail('the command is stopped (state %s)' % state)

    def step_raw(self):
        lflag = termios.tcgetattr(self.slave)[3]
        if lflag & (termios.ICANON | termios.ECHO):
            raise Fail('the terminal is not in raw mode')

    def finish(self):
        while self.status is None:
            self.check_time('waiting for the command to exit')
            self.pump(0.1)
        self.pump(0.1)
        after = termios.tcgetattr(self.slave)
        sys.stdout.write(clean(self.out))
        if not self.out.endswith(b'\n'):
            sys.stdout.write('\n')
        if os.WIFEXITED(self.status):
            print('@@ exit %d' % os.WEXITSTATUS(self.status))
        else:
            print('@@ signal %d' % os.WTERMSIG(self.status))
        print('@@ termios %s' % ('same' if after == self.before else 'changed'))

    def abort(self, why):
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            self.status = os.waitpid(self.pid, 0)[1]
        self.pump(0)
        sys.stdout.write(clean(self.out))
        print('\n@@ FAIL: %s' % why)


ARITY = {'send': 1, 'expect': 1, 'sleep': 1, 'resize': 1, 'signal': 1, 'waitproc': 1,
         'kill': 2, 'state': 2, 'running': 0, 'raw': 0}


def main():
    args = sys.argv[1:]
    rows, cols, timeout = 24, 80, 30.0
    while args and args[0].startswith('--') and args[0] != '--':
        opt, val = args[0], args[1]
        args = args[2:]
        if opt == '--rows':
            rows = int(val)
        elif opt == '--cols':
            cols = int(val)
        elif opt == '--timeout':
            timeout = float(val)
        else:
            sys.exit('ptydrive: unknown option %s' % opt)
    if '--' not in args:
        sys.exit(__doc__)
    cut = args.index('--')
    steps, argv = args[:cut], args[cut + 1:]
    plan = []
    while steps:
        verb = steps[0]
        if verb not in ARITY or len(steps) <= ARITY[verb]:
            sys.exit('ptydrive: bad step %r' % verb)
        plan.append((verb, steps[1:1 + ARITY[verb]]))
        steps = steps[1 + ARITY[verb]:]
    d = Driver(argv, rows, cols, timeout)
    try:
        for verb, a in plan:
            d.check_time(verb)
            getattr(d, 'step_' + verb)(*a)
        d.finish()
    except Fail as e:
        d.abort(str(e))
        sys.exit(1)


if __name__ == '__main__':
    main()
