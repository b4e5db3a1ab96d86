r"""Writing files so that a crash never leaves a partial file under the final name, and keeping
two runs from writing the same outputs.

- :func:`write_atomically` writes beside the target and renames over it; the file gets the
  usual permissions (``0666`` less the umask, like ``open``), and temporaries left by a writer
  that was killed are removed by the next write to the same target.
- :class:`OutputLock` is an exclusive, non-blocking lock on a run's outputs (``fcntl.flock`` on
  a lock file); the operating system releases it when its process dies, even by ``kill -9``.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomically(folder / "figures.json", b"{}").read_bytes()
    b'{}'
    >>> with OutputLock(folder / "run.lock"):
    ...     pass
"""

from __future__ import annotations

__all__ = ["OutputLock", "OutputLockedError", "remove_stale_temporaries", "write_atomically"]

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def _writer_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Removes the temporaries of ``path`` (``.NAME.PID.*.tmp`` beside it) whose writing process
    no longer runs: what a ``kill -9`` during :func:`write_atomically` leaves behind.

    Returns:
        The removed files.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / ".model.pt.999999999.abc.tmp").write_bytes(b"")  # of a writer that died
        >>> [path.name for path in remove_stale_temporaries(folder / "model.pt")]
        ['.model.pt.999999999.abc.tmp']
    """
    path = Path(path)
    removed = []
    prefix = _temporary_prefix(path)
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f"{prefix}*.tmp"):
        pid_text = candidate.name[len(prefix) :].split(".", 1)[0]
        if pid_text.isdigit() and not _writer_is_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def write_atomically(
    path: str | os.PathLike, data: bytes | bytearray | memoryview | Iterable[memoryview]
) -> Path:
    """Writes ``data`` to a temporary file beside ``path``, flushes it to disk, then renames it
    over ``path`` (an atomic replacement on POSIX and Windows). Creates parent directories.
    ``data`` is bytes, or an iterable of byte chunks (anything with the buffer protocol, e.g.
    NumPy ``uint8`` arrays), written one after the other without joining them in memory.

    The file gets mode ``0666`` less the process umask, as a file made by ``open`` would
    (``mkstemp`` alone would leave ``0600``). Stale temporaries of ``path`` from writers that
    were killed are removed first (:func:`remove_stale_temporaries`).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "history.json"
        >>> write_atomically(path, b"{}").read_bytes()
        b'{}'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f"{_temporary_prefix(path)}{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            if isinstance(data, (bytes, bytearray, memoryview)):
                file.write(data)
            else:
                for chunk in data:
                    file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


class OutputLockedError(RuntimeError):
    """Another process holds the lock on these outputs.

    Example:
        >>> issubclass(OutputLockedError, RuntimeError)  # raised by OutputLock, see there
        True
    """


class OutputLock:
    """An exclusive lock on a run's outputs, held while the context is open.

    Arguments:
        path: The lock file (created if missing; left in place, it holds nothing).

    Raises:
        OutputLockedError: another process (or another lock in this one) holds it.

    Example:
        >>> import tempfile
        >>> lock = Path(tempfile.mkdtemp()) / "run.lock"
        >>> with OutputLock(lock):
        ...     try:
        ...         OutputLock(lock).__enter__()  # a second writer is refused at once
        ...     except OutputLockedError:
        ...         print("locked")
        locked
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._file = None

    def __enter__(self) -> OutputLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.close()
            raise OutputLockedError(
                f"{self.path} is locked: another run is writing these outputs"
            ) from None
        self._file = file
        return self

    def __exit__(self, *exc_info) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None
