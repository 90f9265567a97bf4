"""Reading files safely: gzip sniffing and inflation with a cap checked while streaming."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from perflab.errors import InputError
from perflab.leases import lease

GZIP_MAGIC = b"\x1f\x8b"
# Windows editors and PowerShell's Out-File start UTF-8 text with it; DuckDB's readers and
# json.loads refuse it, so a file that has one is read through a copy without it.
UTF8_BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 64 * 1024
SMALL_FILE = 64 * 1024 * 1024
CHUNK = 1 << 20
# A gzip bomb inflates ~1000×; the cap bounds memory and disk whatever the input.
# 8 GiB fits the largest k6 outputs we have seen (a 1 GB NDJSON is ~40 MB gzipped).
DEFAULT_MAX_DECOMPRESSED = 8 << 30
# Past this many inflated bytes, a file that inflates more than BOMB_RATIO× is refused as a
# bomb, long before the cap: real inputs inflate 3× (pprof) to ~25× (k6 NDJSON, the repeated
# lines of a load test), a bomb ~1000×. Below it nothing is judged: a small, very repetitive
# file is not a danger. So a bomb writes at most ~1 GiB to the scratch folder, not the cap.
BOMB_MIN_BYTES = 1 << 30
BOMB_RATIO = 200
HINT_RATIO = 32

# DuckDB's share of an ingest's memory: above it, its temp tables and sorts spill to disk.
# A 1 GB k6 NDJSON peaked at 1.5 GiB RSS without it, 0.66 GiB with it (27 % slower); 512 MB
# leaves room for the Python side under 1 GiB.
INGEST_MEMORY_LIMIT = "512MB"


def max_decompressed_default() -> int:
    env = os.environ.get("PERFLAB_MAX_DECOMPRESSED")
    if env:
        return parse_size(env)
    return DEFAULT_MAX_DECOMPRESSED


def parse_size(text: str) -> int:
    """'512M', '8G', '1000000' → bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if t and t[-1] in mult:
        return int(float(t[:-1]) * mult[t[-1]])
    return int(t)


def sniff(path: Path) -> tuple[bytes, bool]:
    """First HEAD_BYTES of the decompressed content, and whether the file is gzipped."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw, False
    # The head may span gzip members: a first member can be empty (`: | gzip > x.gz; gzip <
    # data >> x.gz` is a valid file), so read on into the next ones.
    head, data = b"", raw
    while data and len(head) < HEAD_BYTES:
        d = zlib.decompressobj(wbits=31)
        try:
            head += d.decompress(data, HEAD_BYTES - len(head))
        except zlib.error as exc:
            raise InputError(path, f"corrupt gzip data: {exc}") from None
        data = d.unused_data if d.eof else b""
    return head, True


def _chunks(path: Path, cap: int, on_read: Callable[[int], object] | None = None) -> Iterator[bytes]:
    """Yield decompressed chunks of a (possibly multi-member) gzip file, enforcing the cap."""
    total = read = 0
    d = zlib.decompressobj(wbits=31)
    fed = False  # has the current member received any bytes?
    with open(path, "rb") as fh:
        while raw := fh.read(CHUNK):
            read += len(raw)
            if on_read is not None:
                on_read(len(raw))
            data = raw
            while data:
                fed = True
                try:
                    # max_length bounds each step, so a bomb never allocates past the cap.
                    out = d.decompress(data, CHUNK)
                except zlib.error as exc:
                    raise InputError(path, f"corrupt gzip data: {exc}") from None
                total += len(out)
                if total > cap:
                    raise InputError(
                        path,
                        f"decompresses to more than {cap} bytes (the cap; raise it with "
                        "PERFLAB_MAX_DECOMPRESSED or --max-decompressed)",
                    )
                if total > BOMB_MIN_BYTES and total > BOMB_RATIO * read:
                    raise InputError(
                        path,
                        f"inflates more than {BOMB_RATIO}× ({read} bytes to over {total}): a gzip bomb? "
                        "(if the file is real, gunzip it and ingest the plain file)",
                    )
                if out:
                    yield out
                if d.eof:
                    # Another gzip member may follow (concatenated .gz files are valid).
                    data = d.unused_data
                    d = zlib.decompressobj(wbits=31)
                    fed = False
                else:
                    data = d.unconsumed_tail
    if fed and not d.eof:
        raise InputError(path, "truncated gzip file (unexpected end of data)")


def read_all(path: Path, gzipped: bool, cap: int) -> bytes | bytearray:
    """The whole (decompressed) content, for formats parsed in memory (pprof, cProfile,
    speedscope). Gzip is inflated into one buffer sized from the gzip trailer (the last
    member's length mod 2^32), not a list of chunks joined at the end, which held the
    content twice at its peak (a 10 GiB pprof bomb peaked at 8.15 GiB RSS)."""
    if not gzipped:
        _check_plain_size(path, cap)
        return path.read_bytes()
    # The trailer is the inflated size only for an honest single-member file: believed up to
    # HINT_RATIO× the file (real profiles inflate 3–10×), so a bomb's claim allocates nothing.
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        hint = min(int.from_bytes(fh.read(4), "little"), cap, HINT_RATIO * path.stat().st_size)
    buf = bytearray(hint)
    at = 0
    for chunk in _chunks(path, cap):
        end = at + len(chunk)
        buf[at:end] = chunk  # in place while it fits; beyond the hint (several members) it grows
        at = end
    del buf[at:]
    return buf


_SCRATCH: Path | None = None


def scratch_dir() -> Path:
    """This process's folder for an ingest's temp files (owner-only), removed when it exits;
    a SIGKILLed process's is removed by the next perflab (perflab.leases)."""
    global _SCRATCH
    if _SCRATCH is None or not _SCRATCH.is_dir():
        _SCRATCH = Path(tempfile.mkdtemp(prefix="perflab-scratch-"))
        lease().add_dir(_SCRATCH, kind="scratch")
        atexit.register(_remove_scratch, _SCRATCH)
    return _SCRATCH


def _remove_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    lease().drop_dir(path)


def inflate_to_temp(path: Path, cap: int) -> Path:
    from tqdm import tqdm

    fd, name = tempfile.mkstemp(prefix="perflab-", suffix=".inflated", dir=scratch_dir())
    try:
        # disable=None: a bar on a terminal only, nothing in logs, pipes or notebooks' stdout.
        with os.fdopen(fd, "wb") as out, tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=f"inflating {path.name}",
            disable=None if path.stat().st_size > SMALL_FILE else True, leave=False,
        ) as bar:
            for chunk in _chunks(path, cap, bar.update):
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


@contextmanager
def without_bom(path: Path, cap: int) -> Iterator[tuple[Path, bool]]:
    """(the path to read, whether it is gzipped): ``path`` itself, or, when its (decompressed)
    content starts with a UTF-8 BOM, a plain temporary copy without it. Line numbers stay
    the same; an InputError about the copy is re-raised naming ``path``."""
    head, gzipped = sniff(path)
    if not head.startswith(UTF8_BOM):
        yield path, gzipped
        return
    fd, name = tempfile.mkstemp(prefix="perflab-", suffix=".nobom", dir=scratch_dir())
    copy = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            skip = len(UTF8_BOM)
            for chunk in _chunks(path, cap) if gzipped else _plain_chunks(path, cap):
                out.write(chunk[skip:])
                skip = max(0, skip - len(chunk))
        try:
            yield copy, False
        except InputError as exc:
            if exc.path != str(copy):
                raise
            raise InputError(path, exc.problem) from None
    finally:
        copy.unlink(missing_ok=True)


def _check_plain_size(path: Path, cap: int) -> None:
    if path.stat().st_size > cap:
        raise InputError(path, f"larger than the cap of {cap} bytes")


def _plain_chunks(path: Path, cap: int) -> Iterator[bytes]:
    _check_plain_size(path, cap)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk
