# httpraw.py - raw HTTP over a Unix socket for the serve tests
# (tests/bats/serve.bats, codebase.bats).  Standard library only.
#
#   httpraw.py send SOCK DATA [--shut]   send DATA (Python escapes: \r\n,
#       \x00...), optionally shut down writing, print everything the server
#       sends until it closes (5 s at most, carriage returns dropped), then
#       "<closed>" or "<open>".
#   httpraw.py hold SOCK N SECONDS       open N connections, print "held N"
#       and keep them SECONDS, then print what each received ("<none>",
#       or the status line), "closed" for each the server closed.
#   httpraw.py slow SOCK SECONDS          send half a request, print
#       "sent", wait up to SECONDS for the server to close: print
#       "closed after S" (S rounded to whole seconds) or "still open".
#   httpraw.py pid SOCK                   print the pid of the serve listening
#       on SOCK (SO_PEERCRED), for tests that did not start it themselves.
#   httpraw.py load SOCK CLIENTS REQUESTS LIMIT  CLIENTS threads, each
#       REQUESTS keep-alive GET /v1/version on one connection; prints
#       "ok N" with the number of correct replies, or the first error;
#       fails if it takes more than LIMIT seconds.
import socket
import sys
import threading
import time


def conn(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def read_all(s, limit):
    s.settimeout(limit)
    out = b""
    end = time.time() + limit
    try:
        while time.time() < end:
            b = s.recv(65536)
            if not b:
                return out, True
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        return out, True
    return out, False


def read_reply(f):
    """One HTTP reply with a Content-Length from file f: (status, body)."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    status = int(line.split()[1])
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
    return status, f.read(length)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "send":
        data = sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
        s = conn(path)
        s.sendall(data)
        if "--shut" in sys.argv[4:]:
            s.shutdown(socket.SHUT_WR)
        out, closed = read_all(s, 5)
        sys.stdout.write(out.decode("latin-1").replace("\r", ""))
        print("<closed>" if closed else "<open>")
    elif cmd == "hold":
        n, secs = int(sys.argv[3]), float(sys.argv[4])
        socks = [conn(path) for _ in range(n)]
        print("held", n, flush=True)
        time.sleep(secs)
        for s in socks:
            out, closed = read_all(s, 0.2)
            print(out.split(b"\r\n")[0].decode() if out else "<none>",
                  "closed" if closed else "open")
    elif cmd == "slow":
        secs = float(sys.argv[3])
        s = conn(path)
        s.sendall(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n")
        print("sent", flush=True)
        t0 = time.time()
        out, closed = read_all(s, secs)
        print("closed after %d" % round(time.time() - t0) if closed else "still open")
    elif cmd == "pid":
        import struct
        s = conn(path)
        cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        print(struct.unpack("3i", cred)[0])
    elif cmd == "load":
        clients, reqs, limit = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        good = [0] * clients
        errors = []

        def worker(i):
            try:
                s = conn(path)
                f = s.makefile("rb")
                for _ in range(reqs):
                    s.sendall(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
                    st, body = read_reply(f)
                    if st == 200 and b'"version"' in body:
                        good[i] += 1
                    else:
                        errors.append("status %d: %r" % (st, body))
                s.close()
            except Exception as e:  # reported, the test fails on it
                errors.append(repr(e))

        t0 = time.time()
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(limit)
        took = time.time() - t0
        if errors:
            print("error", errors[0])
            sys.exit(1)
        if took > limit:
            print("too slow: %.1f s" % took)
            sys.exit(1)
        print("ok", sum(good))
        print("took %.2f s" % took, file=sys.stderr)


main()
