"""Writes that run out of room: a full disk, a quota or a file-size limit (``ulimit -f``).

Each becomes one :class:`~rlcore.errors.DiskFullError` line naming the file and what to do,
whoever writes: a checkpoint, the run lock, the config, the metrics. Torch-free.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from rlcore.errors import DiskFullError

# errno -> (what happened, what to do); EDQUOT does not exist on every platform
_OUT_OF_ROOM = {
    errno.ENOSPC: ("no space left", "Free some space"),
    errno.EFBIG: ("the file-size limit (ulimit -f) was reached",
                  "Raise the file-size limit (ulimit -f)"),
}
if hasattr(errno, "EDQUOT"):
    _OUT_OF_ROOM[errno.EDQUOT] = ("the disk quota was exceeded", "Free some space or raise the quota")
# libraries that report the OS error inside their own exception (safetensors) say it in text
_TEXTS = {"No space left on device": errno.ENOSPC, "StorageFull": errno.ENOSPC,
          "File too large": errno.EFBIG, "FileTooLarge": errno.EFBIG,
          "Disk quota exceeded": getattr(errno, "EDQUOT", errno.ENOSPC)}


def out_of_room(exc: BaseException) -> int | None:
    """The errno (ENOSPC, EFBIG or EDQUOT) when ``exc`` says a write ran out of room, else None."""
    if isinstance(exc, OSError) and exc.errno in _OUT_OF_ROOM:
        return exc.errno
    text = str(exc)
    return next((code for needle, code in _TEXTS.items() if needle in text), None)


@contextlib.contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn running out of room while writing ``path`` into one DiskFullError line naming the
    file (the OS error's file name when it has one); its ``remedy`` says what to do."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        code = out_of_room(exc)
        if code is None:
            raise
        what, remedy = _OUT_OF_ROOM[code]
        where = getattr(exc, "filename", None) or path
        raise DiskFullError(f"{what} writing {where}", remedy=remedy) from None
