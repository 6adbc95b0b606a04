# viewrace.py - races on one shared tree of the view, for locks.bats.
#
# Not imported: the bats file passes it to `python3 -c` inside the
# sandbox (cwd /workspace).  Standard library only.  Threads make the
# system calls concurrently (the interpreter lock is released in them).
#
#   listmove SECONDS DIR MOVED [WHAT]
#       threads list DIR (and MOVED) with os.listdir, others stat every
#       entry, while one thread renames WHAT (default DIR) to its
#       MOVED-counterpart and back
#   listmany PREFIX N
#       for each directory PREFIX0 .. PREFIX<N-1> in turn, its first
#       listing, lookups and rename (to PREFIXi.moved and back, which
#       copies it up) all at once
#   stress SECONDS
#       listings, lookups, renames of directories back and forth (the
#       first of each of 10 project directories, which copies it up,
#       with its first listing),
#       creation and unlinking, and appends to project files (copied up
#       on the first) on stress/, then the final tree's signature
#
# Each worker counts its operations; errors other than the ones a race
# explains (a name gone meanwhile) are printed.  Prints "ops WORKER: ok"
# when it did some, "every op answered within 10 s" unless one took
# longer (a rename holds up the view while it copies a tree up),
# and for stress the tree under stress/ as "PATH TYPE SHA256".
import hashlib
import os
import sys
import threading
import time

RACY = {2, 39}  # ENOENT, ENOTEMPTY: a name that moved or filled meanwhile
lock = threading.Lock()
counts, errors = {}, []
slowest = [0.0]


def op(worker, fn, *args):
    t = time.monotonic()
    try:
        fn(*args)
    except OSError as e:
        if e.errno not in RACY:
            with lock:
                errors.append("%s %s: %s" % (worker, args, e))
    d = time.monotonic() - t
    with lock:
        counts[worker] = counts.get(worker, 0) + 1
        slowest[0] = max(slowest[0], d)


def run(workers, seconds):
    stop = time.monotonic() + seconds
    ts = [threading.Thread(target=w, args=(n, stop)) for n, w in workers]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for n, _ in workers:
        print("ops %s: %s" % (n, "ok" if counts.get(n, 0) > 0 else "none"))
    for e in errors:
        print("error", e)
    if slowest[0] < 10:
        print("every op answered within 10 s")
    else:
        print("slowest op: %d s" % int(slowest[0]))


def stat_all(d):
    for name in os.listdir(d):
        try:
            os.lstat(os.path.join(d, name))
        except FileNotFoundError:
            pass


def listmove(seconds, d, moved, what=None):
    what = what or d
    wmoved = moved if what == d else what + ".moved"

    def lister(n, stop):
        while time.monotonic() < stop:
            for x in (d, moved):
                op(n, os.listdir, x)

    def stater(n, stop):
        while time.monotonic() < stop:
            for x in (d, moved):
                op(n, stat_all, x)

    def mover(n, stop):
        while time.monotonic() < stop:
            op(n, os.rename, what, wmoved)
            op(n, os.rename, wmoved, what)

    run([("list1", lister), ("list2", lister), ("stat", stater), ("move", mover)], seconds)


def listmany(prefix, n):
    dirs = ["%s%d" % (prefix, i) for i in range(int(n))]
    # one round per directory, its first listing and its first rename
    # (which copies it up) started together
    barrier = threading.Barrier(3)

    def lister(name, stop):
        for x in dirs:
            barrier.wait()
            op(name, os.listdir, x)
            op(name, os.listdir, x + ".moved")

    def stater(name, stop):
        for x in dirs:
            barrier.wait()
            op(name, stat_all, x)

    def mover(name, stop):
        for x in dirs:
            barrier.wait()
            op(name, os.rename, x, x + ".moved")
            op(name, os.rename, x + ".moved", x)

    run([("list", lister), ("stat", stater), ("move", mover)], 0)


def stress(seconds):
    def lister(n, stop):
        while time.monotonic() < stop:
            for root, dirs, files in os.walk("stress"):
                pass
            op(n, os.listdir, "stress")

    # the first listing and the first rename (a copy-up) of each project
    # directory under stress/fresh, started together, then more of both
    fresh = threading.Barrier(2)

    def fresh_lister(n, stop):
        for i in range(10):
            fresh.wait()
            op(n, os.listdir, "stress/fresh/d%d" % i)
            op(n, os.listdir, "stress/fresh/e%d" % i)
        while time.monotonic() < stop:
            for i in range(10):
                op(n, os.listdir, "stress/fresh/d%d" % i)

    def fresh_mover(n, stop):
        i = 0
        while i < 10 or time.monotonic() < stop:
            if i < 10:
                fresh.wait()
            op(n, os.rename, "stress/fresh/d%d" % (i % 10), "stress/fresh/e%d" % (i % 10))
            op(n, os.rename, "stress/fresh/e%d" % (i % 10), "stress/fresh/d%d" % (i % 10))
            i += 1

    def stater(n, stop):
        i = 0
        while time.monotonic() < stop:
            i += 1
            for p in ("stress/m/f%d" % (i % 50), "stress/m2/f%d" % (i % 50),
                      "stress/a/sub/f%d" % (i % 50), "stress/b/sub/f%d" % (i % 50),
                      "stress/w/f%d" % (i % 20), "stress/churn/c%d" % (i % 10)):
                op(n, os.lstat, p)

    def mover(n, stop):
        while time.monotonic() < stop:
            op(n, os.rename, "stress/m", "stress/m2")
            op(n, os.rename, "stress/m2", "stress/m")

    def crosser(n, stop):
        while time.monotonic() < stop:
            op(n, os.rename, "stress/a/sub", "stress/b/sub")
            op(n, os.rename, "stress/b/sub", "stress/a/sub")

    def churn(n, stop):
        i = 0
        while time.monotonic() < stop:
            p = "stress/churn/c%d" % (i % 10)
            op(n, lambda: open(p, "w").write("c%d\n" % i))
            op(n, os.unlink, "stress/churn/c%d" % ((i + 5) % 10))
            i += 1

    def writer(n, stop):
        i = 0
        while time.monotonic() < stop:
            p = "stress/w/f%d" % (i % 20)
            op(n, lambda: open(p, "a").write("line %d\n" % i))
            i += 1

    run([("list", lister), ("stat", stater), ("move", mover), ("cross", crosser),
         ("churn", churn), ("write", writer), ("write2", writer),
         ("fresh-list", fresh_lister), ("fresh-move", fresh_mover)], seconds)
    signature()


def signature():
    for root, dirs, files in sorted(os.walk("stress")):
        for f in sorted(files):
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                print(p, "f", hashlib.sha256(fh.read()).hexdigest())
        for x in sorted(dirs):
            print(os.path.join(root, x), "d")


a = sys.argv[1:]
if a[0] == "listmove":
    listmove(float(a[1]), *a[2:])
elif a[0] == "listmany":
    listmany(*a[1:])
elif a[0] == "stress":
    stress(float(a[1]))
else:
    signature()
