# wedge.py - run agentfense with a view that stops answering, for
# locks.bats.
#
#   python3 wedge.py MARK OUT SIGNAL-AFTER -- AGENTFENSE-ARGS...
#
# Starts agentfense (stdout and stderr to OUT) and, once OUT has a line
# "ready" (the sandboxed command prints it), traces every thread of it
# but the main one (ptrace, as its parent may) and stops for good the
# first one that makes a system call naming MARK: the view then holds
# that request, read from the kernel, unanswered, and the sandboxed
# process that sent it waits in the kernel where not even SIGKILL ends
# it.  With SIGNAL-AFTER > 0, sends agentfense SIGTERM that many seconds
# after the stop.  Prints "wedged" when a thread was stopped, then
# "exit N" (agentfense's exit status, 128+N for a signal) and "after S s"
# (seconds from the stop to its end, rounded down), and exits 0.
# Standard library and ctypes only; Linux.
import ctypes
import os
import signal
import subprocess
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
PTRACE_SYSCALL, PTRACE_SETOPTIONS = 24, 0x4200
PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_GET_SYSCALL_INFO = 0x4206, 0x4207, 0x420e
O_TRACESYSGOOD, O_TRACECLONE = 1, 8
WALL = 0x40000000


def ptrace(req, tid, addr=0, data=0):
    return libc.ptrace(req, tid, ctypes.c_void_p(addr), ctypes.c_void_p(data))


def at_entry(tid):
    """Is tid stopped on entering a system call (not leaving it)?"""
    info = ctypes.create_string_buffer(88)
    if ptrace(PTRACE_GET_SYSCALL_INFO, tid, 88, ctypes.addressof(info)) <= 0:
        return False
    return info.raw[0] == 1  # PTRACE_SYSCALL_INFO_ENTRY


def names_mark(tid, mark):
    """Is tid stopped on entering a system call with an argument pointing
    at a string that contains mark (the view serving a request for it;
    on leaving, a read of the request itself would match)?"""
    if not at_entry(tid):
        return False
    try:
        with open("/proc/%d/syscall" % tid) as f:
            fields = f.read().split()
    except OSError:
        return False
    if len(fields) < 4 or not fields[0].isdigit():
        return False
    try:
        mem = os.open("/proc/%d/mem" % tid, os.O_RDONLY)
    except OSError:
        return False
    try:
        for a in fields[1:4]:
            try:
                if mark in os.pread(mem, 256, int(a, 16)):
                    return True
            except (OSError, ValueError, OverflowError):
                pass
    finally:
        os.close(mem)
    return False


def main():
    mark, out, after = sys.argv[1].encode(), sys.argv[2], float(sys.argv[3])
    argv = sys.argv[5:]
    with open(out, "wb") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=f, stdin=subprocess.DEVNULL)
    while p.poll() is None:
        with open(out, "rb") as f:
            if b"ready\n" in f.read():
                break
        time.sleep(0.01)
    else:
        print("exit", p.returncode)
        return
    for t in os.listdir("/proc/%d/task" % p.pid):
        tid = int(t)
        if tid == p.pid:
            continue
        if ptrace(PTRACE_SEIZE, tid, 0, O_TRACESYSGOOD | O_TRACECLONE) == 0:
            ptrace(PTRACE_INTERRUPT, tid)
    wedged_at = None
    status = None
    while status is None:
        if wedged_at and after > 0 and time.monotonic() - wedged_at >= after:
            os.kill(p.pid, signal.SIGTERM)
            after = 0
        try:
            tid, st = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            break
        if tid == 0:
            time.sleep(0.005)
            continue
        if os.WIFEXITED(st) or os.WIFSIGNALED(st):
            if tid == p.pid:
                status = os.waitstatus_to_exitcode(st)
            continue
        if not os.WIFSTOPPED(st):
            continue
        sig = os.WSTOPSIG(st)
        inject = 0
        if sig == (signal.SIGTRAP | 0x80):
            if wedged_at is None and names_mark(tid, mark):
                wedged_at = time.monotonic()
                print("wedged", flush=True)
                continue  # left stopped in the request
        elif st >> 16 == 0 and sig not in (signal.SIGTRAP, signal.SIGSTOP):
            inject = sig  # a signal for the thread: deliver it
        ptrace(PTRACE_SYSCALL, tid, 0, inject)
    if status is None:
        status = p.wait()
    if status < 0:
        status = 128 - status
    print("exit", status)
    if wedged_at is not None:
        print("after %d s" % int(time.monotonic() - wedged_at))


main()
