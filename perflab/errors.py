"""One error type that carries its exit code, so the CLI never prints a traceback
for a user mistake (the memray pattern)."""

from __future__ import annotations

import os


class PerflabError(Exception):
    """A problem the user can act on. ``str(err)`` is the one line the CLI prints."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(PerflabError):
    """A file that cannot be read as what it claims to be. Names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class StoreError(PerflabError):
    """The store cannot be opened or is of a version this perflab cannot read."""

    def __init__(self, message: str, needs_writing: bool = False) -> None:
        super().__init__(message)
        # Opened read-only, the store is empty or must be migrated: opening it to write would do.
        self.needs_writing = needs_writing
