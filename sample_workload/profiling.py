"""Profiles of the running service, served like Go's net/http/pprof.

CPU (/debug/pprof/profile?seconds=N): a sampler thread reads every thread's Python
stack (sys._current_frames) at SAMPLE_HZ and keeps only threads that are running:
the thread's own CPU clock advanced since the previous tick, and its innermost frame
is not an idle wait (the event loop in epoll, a worker thread blocked on its queue).
Each kept sample is worth the CPU time that thread used since the previous tick, so
the profile's cpu total is the CPU the service spent, on every thread: bcrypt's
worker threads included. bcrypt is native code, so its time lands on the Python frame
that called it (sample_workload.auth.check_password).

Heap (/debug/pprof/heap): live Python allocations from tracemalloc as pprof
inuse_objects/inuse_space. tracemalloc must be tracing: start the service with
PYTHONTRACEMALLOC=25 (or any depth) to see everything since start; otherwise the
endpoint traces for `seconds` (default 10) and shows what was allocated in that
window and is still alive.

cProfile (/debug/cprofile?seconds=N): a pstats dump (marshal) of cProfile enabled
for N seconds. cProfile sees only the thread that enables it; this handler runs on
the event loop thread, which runs every request's Python code (the coroutines), but
not bcrypt's worker threads: use the CPU profile for those.
"""

from __future__ import annotations

import ast
import asyncio
import cProfile
import marshal
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from functools import lru_cache
from types import CodeType, FrameType

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sample_workload.pprof import Frame, ProfileBuilder

SAMPLE_HZ = 100  # Go's default rate; 10 ms per tick
MAX_SECONDS = 300
MAX_DEPTH = 128
HEAP_DEFAULT_SECONDS = 10
TRACEMALLOC_FRAMES = 25

# (file basename, function) of innermost frames that mean "this thread is waiting":
# their wait is a C call that does not show as a Python frame.
IDLE_LEAVES = frozenset({
    ("selectors.py", "select"),          # the event loop in epoll_wait
    ("threading.py", "wait"),            # Condition.wait: anyio worker threads, Event.wait
    ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"),
    ("thread.py", "_worker"),            # concurrent.futures worker blocked on its SimpleQueue
    ("socket.py", "accept"),
})

_profile_lock = threading.Lock()  # one CPU profile at a time, as Go's pprof allows
_cprofile_lock = asyncio.Lock()


def _thread_cpu_clock(native_id: int) -> int:
    # Linux's per-thread CPU clock id for a TID (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
    # Unlike pthread_getcpuclockid, a thread that has exited gives EINVAL, not a crash.
    return ((~native_id) << 3) | 6


def thread_cpu_ns(native_id: int | None) -> int | None:
    if native_id is None or not sys.platform.startswith("linux"):
        return None
    try:
        return time.clock_gettime_ns(_thread_cpu_clock(native_id))
    except OSError:
        return None


def is_idle_leaf(frame: FrameType) -> bool:
    code = frame.f_code
    return (os.path.basename(code.co_filename), code.co_name) in IDLE_LEAVES


@lru_cache(maxsize=8192)
def _function_name(code: CodeType, module: str) -> str:
    return f"{module}.{code.co_qualname}" if module else code.co_qualname


def stack_of(frame: FrameType | None) -> list[Frame]:
    out = []
    while frame is not None and len(out) < MAX_DEPTH:
        code = frame.f_code
        module = frame.f_globals.get("__name__", "") if frame.f_globals is not None else ""
        out.append(Frame(_function_name(code, module), code.co_filename, code.co_firstlineno, frame.f_lineno or 0))
        frame = frame.f_back
    return out


def sample_cpu(seconds: float, hz: int = SAMPLE_HZ, sleep: Callable[[float], None] = time.sleep) -> ProfileBuilder:
    """Sample every running thread of this process for ``seconds``; blocking (run it in a thread)."""
    period_ns = int(1e9 / hz)
    me = threading.get_ident()
    prof = ProfileBuilder(sample_types=[("samples", "count"), ("cpu", "nanoseconds")],
                          period_type=("cpu", "nanoseconds"), period=period_ns, time_nanos=time.time_ns())
    last_cpu: dict[int, int] = {}
    for t in threading.enumerate():
        c = thread_cpu_ns(t.native_id)
        if c is not None and t.ident is not None:
            last_cpu[t.ident] = c
    t0 = time.monotonic()
    next_tick = t0 + 1.0 / hz
    last_tick = t0
    while True:
        now = time.monotonic()
        if now < next_tick:
            sleep(next_tick - now)
            continue
        elapsed_ns = int((now - last_tick) * 1e9)
        last_tick = now
        next_tick += 1.0 / hz
        natives = {t.ident: t.native_id for t in threading.enumerate()}
        frames = sys._current_frames()
        for ident, frame in frames.items():
            if ident == me:
                continue
            cpu = thread_cpu_ns(natives.get(ident))
            if cpu is not None:
                prev = last_cpu.get(ident)
                last_cpu[ident] = cpu
                used = cpu - prev if prev is not None else 0
                if used <= 0:
                    continue  # off CPU: blocked, sleeping, or waiting for the GIL
            else:
                used = period_ns  # no per-thread clock here: assume a full tick
            if is_idle_leaf(frame):
                continue
            prof.add(stack_of(frame), [1, min(used, max(elapsed_ns, period_ns))])
        del frames
        if now - t0 >= seconds:
            break
    prof.duration_nanos = int((time.monotonic() - t0) * 1e9)
    return prof


def _seconds(request: Request, default: float) -> float:
    raw = request.query_params.get("seconds", "")
    try:
        s = float(raw) if raw else default
    except ValueError:
        s = -1
    if not 0 < s <= MAX_SECONDS:
        raise ValueError(f"seconds must be a number in (0, {MAX_SECONDS}]")
    return s


def _pprof_response(data: bytes, name: str) -> Response:
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Content-Type-Options": "nosniff"})


async def cpu_profile(request: Request) -> Response:
    try:
        seconds = _seconds(request, 30.0)
    except ValueError as e:
        return JSONResponse({"error": "bad_request", "detail": str(e)}, status_code=400)
    if not _profile_lock.acquire(blocking=False):
        return JSONResponse({"error": "busy", "detail": "a CPU profile is already being taken"}, status_code=409)
    try:
        # A dedicated thread: the default executor's threads would show up as sampled work.
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ProfileBuilder] = loop.create_future()

        def run() -> None:
            try:
                prof = sample_cpu(seconds)
                loop.call_soon_threadsafe(fut.set_result, prof)
            except BaseException as e:  # noqa: BLE001 - handed to the awaiting request
                loop.call_soon_threadsafe(fut.set_exception, e)

        threading.Thread(target=run, name="pprof-sampler", daemon=True).start()
        prof = await fut
    finally:
        _profile_lock.release()
    return _pprof_response(prof.encode_gzip(), "profile")


# -- heap -------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def _defs_of(filename: str) -> tuple[tuple[int, int, str], ...]:
    """(first line, last line, qualname) of every def in a source file, for naming
    tracemalloc's (file, line) frames, which carry no function name."""
    try:
        with open(filename, "rb") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return ()
    out: list[tuple[int, int, str]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    out.append((child.lineno, child.end_lineno or child.lineno, q))
                walk(child, q + (".<locals>." if not isinstance(child, ast.ClassDef) else "."))
            else:
                walk(child, prefix)

    walk(tree, "")
    return tuple(out)


def _module_files() -> dict[str, str]:
    out = {}
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f:
            out[f] = name
    return out


def _heap_frame(filename: str, lineno: int, modules: dict[str, str]) -> Frame:
    module = modules.get(filename, os.path.splitext(os.path.basename(filename))[0])
    best = None
    for first, last, qual in _defs_of(filename):
        if first <= lineno <= last and (best is None or first >= best[0]):
            best = (first, qual)
    if best is None:
        return Frame(f"{module}.<module>", filename, 1, lineno)
    return Frame(f"{module}.{best[1]}", filename, best[0], lineno)


def heap_profile(snapshot: tracemalloc.Snapshot) -> ProfileBuilder:
    prof = ProfileBuilder(sample_types=[("inuse_objects", "count"), ("inuse_space", "bytes")],
                          period_type=("space", "bytes"), period=1, time_nanos=time.time_ns())
    modules = _module_files()
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    for stat in snapshot.statistics("traceback"):
        # tracemalloc lists frames oldest first; pprof wants the leaf first.
        stack = [_heap_frame(f.filename, f.lineno, modules) for f in reversed(stat.traceback)]
        prof.add(stack, [stat.count, stat.size])
    return prof


async def heap(request: Request) -> Response:
    if tracemalloc.is_tracing():
        snap = tracemalloc.take_snapshot()
    else:
        try:
            seconds = _seconds(request, HEAP_DEFAULT_SECONDS)
        except ValueError as e:
            return JSONResponse({"error": "bad_request", "detail": str(e)}, status_code=400)
        tracemalloc.start(TRACEMALLOC_FRAMES)
        try:
            await asyncio.sleep(seconds)
            snap = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    prof = await asyncio.to_thread(heap_profile, snap)
    return _pprof_response(prof.encode_gzip(), "heap")


# -- cProfile ---------------------------------------------------------------------------

async def cprofile(request: Request) -> Response:
    try:
        seconds = _seconds(request, 30.0)
    except ValueError as e:
        return JSONResponse({"error": "bad_request", "detail": str(e)}, status_code=400)
    if _cprofile_lock.locked():
        return JSONResponse({"error": "busy", "detail": "a cProfile run is already in progress"}, status_code=409)
    async with _cprofile_lock:
        prof = cProfile.Profile()
        # Enabled here, on the event loop thread: it then sees every coroutine the loop
        # runs while this handler sleeps, and nothing on other threads.
        prof.enable()
        try:
            await asyncio.sleep(seconds)
        finally:
            prof.disable()
    prof.create_stats()
    data = marshal.dumps(prof.stats)  # exactly what pstats.Stats.dump_stats writes
    return _pprof_response(data, "cprofile.pstats")


def index(request: Request) -> Response:
    text = ("sample_workload profiles, in the spirit of Go's net/http/pprof\n\n"
            "/debug/pprof/profile?seconds=30  CPU profile, gzipped profile.proto (all threads)\n"
            "/debug/pprof/heap[?seconds=10]    live allocations (tracemalloc), gzipped profile.proto\n"
            "/debug/cprofile?seconds=30       cProfile of the event loop thread, pstats dump (marshal)\n"
            "/debug/vars                      counters and gauges (JSON)\n")
    return Response(text, media_type="text/plain")
