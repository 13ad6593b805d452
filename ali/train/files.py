"""Files a run writes are whole or absent: a kill or a full disk part-way never leaves half a file.
Files it reads back are parsed whole or refused with one line naming the file and the fix.

Each write goes to a temporary file of a unique name beside the target, is flushed to the disk
(fsync), then renamed over the target (``os.replace``, atomic on POSIX). Until the rename, the old
file (the previous checkpoint, say) stays as it was; a failed write removes its temporary file, and
the next write of the same file removes those a killed writer left (its process is gone).

Each read (``read_json``, ``read_tensors``, ``read_csv``) turns a missing, truncated or foreign file
into an ``UnusableFileError``: "<what> <path> is unreadable ...; <fix>", the library's own words kept
as its ``__cause__``. Tensors load with ``weights_only=True`` only; no message suggests otherwise.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


class UnusableFileError(RuntimeError):
    """A file the suite reads that is missing, truncated, corrupt or not its own; the message names the
    file and what to do."""


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a fresh temporary file, then put it in place of ``path`` in one step."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)
    _remove_leftovers(path)


def _remove_leftovers(path: Path) -> None:
    """Temporary files of ``path`` whose writer died (a SIGKILL mid-write): a checkpoint's may be large."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: Path, obj: Mapping) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable; some file systems cannot open a directory, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------- reading
def read_json(path: Path, what: str, fix: str) -> Any:
    """The JSON at ``path``; ``what`` names the file's role in messages ("record", "metrics")."""
    path = Path(path)
    return _read(path, what, fix, lambda: json.loads(path.read_text(encoding="utf-8")))


def read_tensors(path: Path, what: str, fix: str) -> Any:
    """A file of tensors and plain values, on the CPU, loaded with ``weights_only=True``."""
    import torch

    path = Path(path)
    return _read(path, what, fix, lambda: torch.load(path, map_location="cpu", weights_only=True))


def read_csv(path: Path, what: str, fix: str):
    """A CSV the suite wrote, as a pandas DataFrame."""
    import pandas as pd

    path = Path(path)
    return _read(path, what, fix, lambda: pd.read_csv(path))


def unusable(path: Path, what: str, fix: str, why: str = "truncated or not written by this suite") -> UnusableFileError:
    return UnusableFileError(f"{what} {path} is unreadable: {why}; {fix}")


def _read(path: Path, what: str, fix: str, load: Callable[[], Any]) -> Any:
    if not path.exists():
        raise UnusableFileError(f"{what} {path} does not exist; {fix}")
    try:
        return load()
    except Exception as err:  # the library's words (torch's are several lines) stay in __cause__
        raise unusable(path, what, fix) from err
