"""Files that hold a user's measurements are the user's alone.

A store and a run folder hold query texts, profiles and settings of the user's service; on a
shared machine the default umask (022) would let every local user read them. What perflab
creates for them is made owner-only (directories 0700, files 0600); what already exists is
left as its owner set it.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dirs(path: Path) -> Path:
    """``mkdir -p path``, each directory it creates owner-only (whatever the umask)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for p in reversed(missing):
        try:
            p.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # made meanwhile by another process: theirs to mode
            continue
        os.chmod(p, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
    return path


def private_file(path: Path) -> None:
    """Make a file perflab just created owner-only."""
    os.chmod(path, PRIVATE_FILE_MODE)
