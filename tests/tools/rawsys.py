# rawsys.py - raw system calls for the escape tests (tests/bats/escape*.bats).
#
# Not imported: the bats file reads it and passes it, followed by the
# test's own lines, to `python3 -c` inside the sandbox (the tests tree is
# not visible there).  Standard library and ctypes only.
#
# t(NAME, FN) prints "NAME: RESULT", RESULT being OK (FN returned None or
# an int), FN's string, or the errno name of the OSError it raised.
import ctypes
import errno
import mmap
import os
import platform
import signal
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
MACHINE = platform.machine()

# System call numbers glibc has no wrapper for (or wraps differently).
# Those from 424 on are the same on every architecture.
NR = dict(io_uring_setup=425, io_uring_enter=426, io_uring_register=427,
          pidfd_open=434, openat2=437)
NR.update({
    "x86_64": dict(getdents64=217, process_vm_readv=310, pivot_root=155, getpid=39,
                   tgkill=234),
    "aarch64": dict(getdents64=61, process_vm_readv=270, pivot_root=41, getpid=172,
                    tgkill=131),
}.get(MACHINE, {}))


def cerr(r):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def sys_call(name, *args):
    """The raw system call NAME; returns its result or raises OSError."""
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return cerr(libc.syscall(ctypes.c_long(NR[name]), *conv))


def rename2(a, b, flags):
    """renameat2(2) with flags, relative to the working directory."""
    cerr(libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags))


def t(name, fn):
    try:
        r = fn()
        r = "OK" if r is None or isinstance(r, int) else r
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    print("%s: %s" % (name, r), flush=True)


# openat2(2): struct open_how { u64 flags, mode, resolve; }
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x08, 0x10


def openat2(dirfd, path, flags, resolve, mode=0):
    how = struct.pack("QQQ", flags, mode, resolve)
    buf = ctypes.create_string_buffer(how, len(how))
    return sys_call("openat2", dirfd, ctypes.c_char_p(os.fsencode(path)), buf, len(how))


def getdents(path):
    """Every name getdents64 returns for the directory PATH, with d_off."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(1 << 16)
    out = []
    try:
        while True:
            n = sys_call("getdents64", fd, buf, len(buf))
            if n == 0:
                return out
            raw, pos = buf.raw[:n], 0
            while pos < n:
                ino, off, reclen, typ = struct.unpack_from("QqHB", raw, pos)
                name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
                out.append((name.decode(errors="surrogateescape"), off))
                pos += reclen
    finally:
        os.close(fd)


class FileHandle(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int),
                ("h", ctypes.c_ubyte * 128)]


def name_to_handle(path):
    fh = FileHandle()
    fh.bytes = 128
    mnt = ctypes.c_int()
    cerr(libc.name_to_handle_at(AT_FDCWD, os.fsencode(path), ctypes.byref(fh),
                                ctypes.byref(mnt), 0))
    return fh


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def vm_readv(pid):
    """process_vm_readv of 8 bytes at a plausible address of PID."""
    local = ctypes.create_string_buffer(8)
    liov = IoVec(ctypes.cast(local, ctypes.c_void_p), 8)
    riov = IoVec(0x400000, 8)
    return sys_call("process_vm_readv", pid, ctypes.byref(liov), 1, ctypes.byref(riov), 1, 0)


PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206


def ptrace(req, pid):
    return cerr(libc.ptrace(ctypes.c_long(req), ctypes.c_long(pid), None, None))


# io_uring, just enough to submit one openat and wait for its result.
IORING_OFF_SQ_RING, IORING_OFF_CQ_RING, IORING_OFF_SQES = 0, 0x8000000, 0x10000000
IORING_OP_OPENAT = 18
IORING_ENTER_GETEVENTS = 1


def uring_openat(path, flags, dirfd=AT_FDCWD):
    """Open PATH through io_uring; returns the fd or raises OSError."""
    params = ctypes.create_string_buffer(120)
    ring = sys_call("io_uring_setup", 4, params)
    try:
        (sq_entries, cq_entries, _flags, _cpu, _idle, _feat, _wq) = \
            struct.unpack_from("7I", params.raw, 0)
        sq_off = struct.unpack_from("7I", params.raw, 40)   # head tail mask entries flags dropped array
        cq_off = struct.unpack_from("6I", params.raw, 80)   # head tail mask entries overflow cqes
        sq_size = sq_off[6] + sq_entries * 4
        cq_size = cq_off[5] + cq_entries * 16
        sq = mmap.mmap(ring, sq_size, offset=IORING_OFF_SQ_RING)
        cq = mmap.mmap(ring, cq_size, offset=IORING_OFF_CQ_RING)
        sqes = mmap.mmap(ring, sq_entries * 64, offset=IORING_OFF_SQES)
        cpath = ctypes.create_string_buffer(os.fsencode(path))
        sqe = bytearray(64)
        struct.pack_into("BBHi", sqe, 0, IORING_OP_OPENAT, 0, 0, dirfd)
        struct.pack_into("QQI", sqe, 8, 0, ctypes.addressof(cpath), 0)  # off, addr, len (mode)
        struct.pack_into("I", sqe, 28, flags)                          # open_flags
        struct.pack_into("Q", sqe, 32, 0x4166)                         # user_data
        sqes[0:64] = bytes(sqe)
        tail = struct.unpack_from("I", sq, sq_off[1])[0]
        mask = struct.unpack_from("I", sq, sq_off[2])[0]
        struct.pack_into("I", sq, sq_off[6] + (tail & mask) * 4, 0)
        struct.pack_into("I", sq, sq_off[1], tail + 1)
        sys_call("io_uring_enter", ring, 1, 1, IORING_ENTER_GETEVENTS, 0, 0)
        head = struct.unpack_from("I", cq, cq_off[0])[0]
        cmask = struct.unpack_from("I", cq, cq_off[2])[0]
        _ud, res, _fl = struct.unpack_from("QiI", cq, cq_off[5] + (head & cmask) * 16)
        struct.pack_into("I", cq, cq_off[0], head + 1)
        if res < 0:
            raise OSError(-res, os.strerror(-res))
        return res
    finally:
        os.close(ring)


def machine_code(code):
    """Run x86-64 machine CODE (ending in ret) in a child process and
    return how the child ended: "exit N" or "signal NAME"."""
    pid = os.fork()
    if pid == 0:
        m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        m.write(code)
        fn = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
        r = fn()
        os._exit(0 if r == os.getpid() else 1)
    st = os.waitpid(pid, 0)[1]
    if os.WIFSIGNALED(st):
        return "signal " + signal.Signals(os.WTERMSIG(st)).name
    return "exit %d" % os.WEXITSTATUS(st)


def raw_syscall_child(nr):
    """syscall(NR) in a child process: "exit 0" if it returned the pid,
    "errno NAME", or "signal NAME"."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        v = libc.syscall(ctypes.c_long(nr))
        e = ctypes.get_errno()
        os.write(w, (("pid" if v == os.getpid() else errno.errorcode.get(e, str(e)))).encode())
        os._exit(0)
    os.close(w)
    st = os.waitpid(pid, 0)[1]
    said = os.read(r, 64).decode()
    if os.WIFSIGNALED(st):
        return "signal " + signal.Signals(os.WTERMSIG(st)).name
    return "exit 0" if said == "pid" else "errno " + said
