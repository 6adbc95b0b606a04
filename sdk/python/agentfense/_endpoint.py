"""Where serve listens, and starting it when nothing does.

An endpoint is a socket path or ``unix:///path``; None means serve's own
default ($XDG_RUNTIME_DIR/agentfense/agentfense.sock, else
/tmp/agentfense-UID/agentfense.sock).  serve has no TCP listener, so a
``host:port`` endpoint (the gRPC default of other SDKs, localhost:9000) is
refused with an explanation rather than tried.
"""

import errno
import os
import re
import shutil
import stat
import subprocess
import tempfile
from typing import List, Optional

from .exceptions import ConnectionError, InvalidConfigurationError

# As the CLI: an auto-started serve exits after 5 minutes without clients.
AUTOSTART_IDLE = 300
AUTOSTART_WAIT = 5.0


def default_socket() -> str:
    """serve's default socket path for this user."""
    rt = os.environ.get("XDG_RUNTIME_DIR")
    if rt and rt.startswith("/"):
        return os.path.join(rt, "agentfense", "agentfense.sock")
    return "/tmp/agentfense-%d/agentfense.sock" % os.getuid()


def check_default_dir(sock: str) -> None:
    """Refuse the default socket's directory, if it exists, unless it is a
    directory of ours that nobody else may enter — as serve and the CLI
    do: in /tmp another user could have made it, and would then receive
    our commands and files.  Raises ConnectionError."""
    d = os.path.dirname(sock)
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        return  # serve makes it when it starts
    except OSError as e:
        raise ConnectionError("cannot use socket directory '%s': %s" % (d, e.strerror)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConnectionError("refusing socket directory '%s': not a directory "
                              "(hint: remove it, or pass endpoint=)" % d)
    if st.st_uid != os.getuid():
        raise ConnectionError("refusing socket directory '%s': owned by uid %d, not by you "
                              "(hint: another user made it; pass endpoint= or set "
                              "XDG_RUNTIME_DIR)" % (d, st.st_uid))
    if st.st_mode & 0o077:
        raise ConnectionError("refusing socket directory '%s': mode %04o lets others in "
                              "(hint: run 'chmod 700 %s')" % (d, st.st_mode & 0o7777, d))


def resolve(endpoint: Optional[str]) -> str:
    """The socket path of an endpoint; raises InvalidConfigurationError for
    a TCP one."""
    if endpoint is None or endpoint == "":
        return default_socket()
    if not isinstance(endpoint, (str, os.PathLike)):
        raise InvalidConfigurationError("endpoint must be a socket path, not %r" % (endpoint,))
    ep = os.fspath(endpoint)
    if ep.startswith("unix://"):
        path = ep[len("unix://"):]
        if not path.startswith("/"):
            raise InvalidConfigurationError(
                "endpoint '%s': write unix:// and an absolute path, as unix:///run/x.sock" % ep)
        return path
    if ep.startswith("unix:"):
        return ep[len("unix:"):]
    tcp = re.match(r"^(?:[a-z][a-z0-9+.-]*://)?\[?[\w.:-]*\]?:\d+/?$", ep, re.I) or \
        re.match(r"^(?:https?|grpcs?|tcp|dns)://", ep, re.I)
    if tcp and not os.path.exists(ep):
        raise InvalidConfigurationError(
            "endpoint '%s' is a network address, but agentfense serve listens only on a "
            "Unix socket that only its user can use (no TCP); pass the socket's path, "
            "'unix:///path/to/agentfense.sock', or nothing for the default %s"
            % (ep, default_socket()))
    return os.path.abspath(ep)


def find_binary() -> List[str]:
    """Where the agentfense binary may be: $AGENTFENSE_BIN, then PATH.
    Returns the candidates that exist (possibly none)."""
    found = []
    env = os.environ.get("AGENTFENSE_BIN")
    if env:
        found.append(env)
    p = shutil.which("agentfense")
    if p and p not in found:
        found.append(p)
    return found


def binary_or_raise(what: str) -> str:
    """The agentfense binary, or ConnectionError saying where it looked."""
    for b in find_binary():
        if os.path.isfile(b) and os.access(b, os.X_OK):
            return b
    env = os.environ.get("AGENTFENSE_BIN")
    raise ConnectionError(
        "cannot %s: no agentfense binary (AGENTFENSE_BIN is %s, and 'agentfense' is "
        "not in PATH)" % (what, ("'%s', not an executable" % env) if env else "unset"))


def spawn_serve(sock: str):
    """Start `agentfense serve [--socket SOCK] --idle-exit 300` detached (its
    own session, reparented away from us so it is nobody's zombie).
    Returns (binary, log file path) — the log holds what serve printed if
    it failed to start.  Raises ConnectionError when there is no binary."""
    binary = binary_or_raise("start agentfense serve on '%s'" % sock)
    # On its default socket serve makes (and checks) the directory itself.
    where = [] if sock == default_socket() else ["--socket", sock]
    fd, log = tempfile.mkstemp(prefix="agentfense-serve-", suffix=".log")
    try:
        # sh backgrounds serve and exits at once: serve's parent becomes
        # init (or the nearest subreaper), which reaps it.
        subprocess.run(["/bin/sh", "-c", 'exec "$@" </dev/null >/dev/null &', "sh",
                        binary, "serve"] + where + ["--idle-exit",
                        str(AUTOSTART_IDLE)], stderr=fd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, start_new_session=True, check=False,
                       close_fds=True)
    except OSError as e:
        os.close(fd)
        os.unlink(log)
        raise ConnectionError("cannot start '%s serve --socket %s': %s"
                              % (binary, sock, e.strerror)) from e
    os.close(fd)
    return binary, log


def startup_failed(binary: str, sock: str, log: str, why: str) -> ConnectionError:
    """The error for a serve that did not come up, with what it printed."""
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            said = " ".join(f.read().split())[:500]
    except OSError:
        said = ""
    msg = "started '%s serve --socket %s', but it did not answer: %s" % (binary, sock, why)
    if said:
        msg += "; it said: " + said
    return ConnectionError(msg)


def forget_log(log: str) -> None:
    """Remove the start-up log of a serve that came up."""
    try:
        os.unlink(log)
    except OSError:
        pass


# Errors of connect(2) that mean nothing listens there.
NOBODY = (errno.ENOENT, errno.ECONNREFUSED)


def connect_error(sock: str, e: OSError) -> ConnectionError:
    """The error for a socket we could not connect to."""
    hint = ""
    if e.errno == errno.EACCES:
        hint = " (the socket belongs to another user?)"
    return ConnectionError("cannot connect to agentfense serve on '%s': %s%s"
                           % (sock, e.strerror or e, hint))
