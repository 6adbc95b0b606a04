"""Images for runtime DOCKER: a directory on this machine as it is, or a
registry reference fetched into an OCI layout with skopeo.

serve runs an image from a directory (an OCI layout or an unpacked root
file system); agentfense itself fetches nothing from the network.  A
reference such as ``python:3.11-slim`` is fetched only where skopeo is
installed, into $XDG_CACHE_HOME/agentfense/images (once per reference);
without skopeo it is an InvalidConfigurationError that says so — never
silently ignored.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from typing import Optional

from .exceptions import InvalidConfigurationError


def is_reference(image: str) -> bool:
    """Whether image names a registry image rather than a directory."""
    if image.startswith("docker://"):
        return True
    return not image.startswith(("/", "./", "../", "~")) and not os.path.exists(image)


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not base.startswith("/"):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "agentfense", "images")


def resolve(image: Optional[str]) -> Optional[str]:
    """The directory serve should run for image: a path made absolute, or
    the OCI layout a reference was fetched into.  Raises
    InvalidConfigurationError when a reference cannot be fetched."""
    if image is None:
        return None
    img = os.path.expanduser(os.fspath(image))
    if not img:
        raise InvalidConfigurationError("image is empty")
    if not is_reference(img):
        return os.path.abspath(img)
    ref = img[len("docker://"):] if img.startswith("docker://") else img
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise InvalidConfigurationError(
            "image '%s' is a registry reference, and fetching one needs skopeo, which is "
            "not installed here (apt-get install skopeo); or pass an OCI layout directory "
            "or a root file system directory on this machine" % ref)
    dest = os.path.join(cache_dir(), hashlib.sha256(ref.encode()).hexdigest()[:32])
    if os.path.isfile(os.path.join(dest, "index.json")):
        return dest
    os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".fetch-", dir=os.path.dirname(dest))
    try:
        p = subprocess.run([skopeo, "copy", "docker://" + ref, "oci:" + tmp + ":latest"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=1800)
        if p.returncode != 0:
            why = p.stderr.decode("utf-8", "replace").strip().splitlines()
            raise InvalidConfigurationError("cannot fetch image '%s' with skopeo: %s"
                                            % (ref, why[-1] if why else
                                               "exit status %d" % p.returncode))
        try:
            os.rename(tmp, dest)
        except OSError:  # fetched meanwhile by another process: use that
            if not os.path.isfile(os.path.join(dest, "index.json")):
                raise
        return dest
    except subprocess.TimeoutExpired:
        raise InvalidConfigurationError("fetching image '%s' with skopeo took over 30 "
                                        "minutes" % ref) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
