"""Files that hold biometric data, or are derived from it: yours, private, and never reached through a planted link.

On a shared machine another user can plant a symbolic link where facecli is
about to write (a sticky, world-writable folder such as /tmp lets them), or
hand over a gallery they own. So, as OpenSSH does with key files:

- a gallery or cache file must be owned by you and writable by nobody else
  (``FACECLI_SHARED_GALLERY=1`` accepts a gallery owned by another user or
  writable by a group, for deliberate sharing);
- a symbolic link on the way is followed only when you own it;
- new files are created with O_EXCL (which never follows a link) and mode
  0600 from the first byte, under a random name in the target folder, then
  renamed into place: a rename replaces a name, it never writes through it.

The checks and the use are not one atomic step (a path can change in
between); what they rule out is writing through, or trusting, what someone
else put there beforehand.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from facecli.errors import FaceCliError

SHARED_GALLERY_ENV = "FACECLI_SHARED_GALLERY"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_link(path: Path, error: type[FaceCliError] = FaceCliError) -> None:
    """Refuse a symbolic link at ``path`` that someone else owns (a link you made yourself is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) and st.st_uid != os.geteuid():
        raise error(str(path), f"is a symbolic link owned by {_owner(st.st_uid)}, not by you: refusing to follow "
                               "it (remove it, or use another path)")


def check_private(path: Path, what: str, error: type[FaceCliError] = FaceCliError, shared_ok: bool = False) -> None:
    """Refuse an existing ``path`` that is a planted link, not a regular file, someone else's, or writable by others.

    ``shared_ok`` (a gallery under ``FACECLI_SHARED_GALLERY=1``) accepts
    another owner and group write access, never write access for everyone.
    """
    check_link(path, error)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise error(str(path), "is a dangling symbolic link: refusing to create a file through it") from None
        return
    if not stat.S_ISREG(st.st_mode):
        raise error(str(path), f"is not a regular file: not a {what}")
    hint = f"; set {SHARED_GALLERY_ENV}=1 to share a gallery deliberately" if what == "gallery" else ""
    if st.st_uid != os.geteuid() and not shared_ok:
        raise error(str(path), f"is owned by {_owner(st.st_uid)}, not by you: a {what} holds biometric data; "
                               f"copy it if you trust it{hint}")
    loose = st.st_mode & (0o002 if shared_ok else 0o022)
    if loose:
        who = "everyone" if st.st_mode & 0o002 else "its group"
        raise error(str(path), f"is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}): anyone who can write "
                               f"it can make strangers match; fix it with `chmod 600 {path}`{hint}")


def trusted(path: Path, what: str) -> bool:
    """Whether derived data at ``path`` (a search index, a face cache) can be trusted: missing, or a regular file
    of yours that no one else can write (``check_private``); a file that is not is rebuilt, never read."""
    try:
        check_private(path, what)
    except FaceCliError:
        return False
    return True


def private_folder(folder: Path) -> bool:
    """Whether ``folder`` and every folder above it up to the home or / can be changed by you (and root) alone:
    what is found there (a cached stamp, an optimised graph, a program) was put there by you."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid not in (os.geteuid(), 0) \
            or st.st_mode & 0o022:
        return False
    parent = folder.parent
    return parent == folder or folder == Path.home() or private_folder(parent) or bool(
        os.lstat(parent).st_mode & stat.S_ISVTX and st.st_uid == os.geteuid())


def shared_gallery_allowed() -> bool:
    return os.environ.get(SHARED_GALLERY_ENV, "") not in ("", "0")


def read_regular(path: Path, what: str, limit: int, error: type[FaceCliError] = FaceCliError) -> bytes:
    """The bytes of the regular file at ``path``, read through one descriptor, at most ``limit`` of them: a FIFO
    (which would block), a device such as /dev/zero (which never ends) or a file past ``limit`` is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise error(str(path), f"cannot read the {what}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(str(path), f"is not a regular file: not a {what}")
        if st.st_size > limit:
            raise error(str(path), f"holds {st.st_size} bytes, more than a {what} ever does ({limit})")
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise error(str(path), f"holds more than {limit} bytes, more than a {what} ever does")
        return b"".join(chunks)
    except OSError as exc:
        raise error(str(path), f"cannot read the {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` (and missing parents) readable by you alone; an existing folder is left as it is."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


@contextlib.contextmanager
def new_file(folder: Path, name: str, suffix: str = ".tmp"):
    """A fresh 0600 file in ``folder`` under a random name (O_EXCL: no link is ever followed): (fd, path).

    The caller fills it and then moves it into place with ``publish``; it is
    removed if the block fails or does not publish it. ``suffix``: for writers
    that choose a format by the file name's extension.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    try:
        yield fd, Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def check_replaceable(target: Path, error: type[FaceCliError] = FaceCliError) -> None:
    """Refuse a ``target`` that is a link, not a regular file, or someone else's: facecli replaces only its own."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else f"something of {_owner(st.st_uid)}" \
            if st.st_uid != os.geteuid() else "not a regular file"
        raise error(str(target), f"is {kind}: refusing to replace it")


def publish(tmp: Path, target: Path, error: type[FaceCliError] = FaceCliError) -> None:
    """Rename ``tmp`` over ``target``, unless what is there is a link or someone else's file (then an error)."""
    check_replaceable(target, error)
    os.replace(tmp, target)


@contextlib.contextmanager
def private_output(target: Path, error: type[FaceCliError] = FaceCliError, mode: int = 0o600) -> Iterator[Path]:
    """Where to write what will be ``target`` (a result file: embeddings, an annotated video): a fresh 0600 file
    beside it, with its extension, moved into place when the block ends; removed if the block fails, so nothing
    is half-written. A link or someone else's file at ``target`` is refused before any work and again at the
    move: nothing is ever written through a link planted there. ``mode``: 0644 for what is not personal data
    (a model file)."""
    check_replaceable(target, error)
    with contextlib.ExitStack() as stack:
        try:
            fd, tmp = stack.enter_context(new_file(target.parent, target.name, target.suffix or ".tmp"))
            os.fchmod(fd, mode)
        except OSError as exc:
            raise error(str(target), f"cannot write: {exc.strerror or exc}") from None
        yield tmp  # what the caller's writing raises is its own
        try:
            publish(tmp, target, error)
        except OSError as exc:
            raise error(str(target), f"cannot write: {exc.strerror or exc}") from None


def write_private(target: Path, data: bytes, error: type[FaceCliError] = FaceCliError) -> None:
    """Replace ``target`` with ``data`` atomically, 0600, never through a link (``new_file`` + ``publish``)."""
    with new_file(target.parent, target.name) as (fd, tmp):
        with os.fdopen(os.dup(fd), "wb") as fh:
            fh.write(data)
        publish(tmp, target, error)
