"""Files a run writes are whole or absent: a kill or a full disk part-way never leaves half a file.

Each write goes to a temporary file of a unique name beside the target, is flushed to the disk
(fsync), then renamed over the target (``os.replace``, atomic on POSIX). Until the rename, the old
file (the previous checkpoint, say) stays as it was; a failed write removes its temporary file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO


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
