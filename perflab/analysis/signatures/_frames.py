"""Which blocked stacks of a contention profile are lock waits and which are pool waits.

perflab.analysis.categories files every blocking frame under "locks" (mutexes, channels,
select, wait groups alike), which is right for a CPU profile but says nothing in a Go
block profile, where every sample is a wait. A lock-contention diagnosis needs to tell
apart what the goroutines waited for::

    stack (leaf first)                                        counted as
    sync.(*Mutex).Lock <- main.(*cache).get                   lock  (at main.(*cache).get)
    sync.(*RWMutex).Unlock <- main.(*sessionStore).janitor    lock  (a mutex profile: all locks)
    runtime.chansend1 <- main.(*dbPool).acquire <- ...        pool  (at main.(*dbPool).acquire)
    database/sql.(*DB).conn <- database/sql.(*DB).query       pool
    runtime.selectgo <- main.callInventory                    neither: a downstream call
    sync.(*WaitGroup).Wait <- main.fetchAll                   neither: joining a fan-out

A stack that holds a pool-acquire frame is a pool wait even if the pool uses a mutex
inside: the pool is the cause.
"""

from __future__ import annotations

import polars as pl

# Mutexes and read-write locks: Go's sync (and internal/sync since Go 1.24), the runtime's
# semaphore entry points that only mutexes use, pthreads, Python's thread locks.
LOCK_FRAME = (r"^sync\.\(\*(RW)?Mutex\)\.|^internal/sync\.\(\*(RW)?Mutex\)\."
              r"|^sync\.runtime_Semacquire(Mutex|RWMutex\w*)$"
              r"|pthread_mutex_lock|pthread_rwlock_\w*lock|__lll_lock_wait"
              r"|^threading\.(R?Lock|_RLock)\.acquire$|'_thread\.(lock|RLock)'")
# Connection (or worker) pools: a pool type's acquire/get/checkout, database/sql's conn,
# pgxpool and puddle, SQLAlchemy's QueuePool checkout, asyncpg and psycopg_pool.
POOL_FRAME = (r"\(\*\w*[Pp]ool(\[[^\]]*\])?\)\.(acquire|Acquire|get|Get|getConn|checkout|Checkout|conn|Conn)\w*$"
              r"|^database/sql\.\(\*DB\)\.conn$|puddle|pgxpool\."
              r"|^sqlalchemy\.pool\.\S*\.(_do_get|checkout|connect)$|^asyncpg\.pool\.\S*acquire|^psycopg_pool\.\S*getconn")
# sync.Pool never blocks; a frame of it is an allocation cache, not a wait.
NOT_POOL = r"^sync\.\(\*Pool\)\."
# The frames of the wait itself, skipped when naming where a program waited.
PLUMBING = r"^(runtime|sync|internal/sync|runtime/internal\S*)\.|^threading\.|^_thread\."

_SCHEMA = {"frames": pl.List(pl.String), "value": pl.Int64}


def classify(stacks: pl.DataFrame) -> pl.DataFrame:
    """``stacks`` (frames leaf first, value) with ``what`` (lock | pool | other) and ``site``.

    ``site`` is the frame to blame: for a pool wait the pool's acquire frame, for a lock the
    first frame below the lock's own (the code that took it), else the leaf.
    """
    if stacks.is_empty():
        return stacks.with_columns(pl.lit(None, pl.String).alias("what"), pl.lit(None, pl.String).alias("site"))
    ex = (stacks.with_row_index("stack").explode("frames")
          .with_columns(pl.int_range(pl.len()).over("stack").alias("pos"))
          .with_columns(
              (pl.col("frames").str.contains(POOL_FRAME) & ~pl.col("frames").str.contains(NOT_POOL))
              .fill_null(False).alias("is_pool"),
              pl.col("frames").str.contains(LOCK_FRAME).fill_null(False).alias("is_lock"),
              pl.col("frames").str.contains(PLUMBING).fill_null(False).alias("is_plumbing"),
          ))
    per = ex.group_by("stack").agg(
        pl.col("is_pool").any().alias("pool"),
        pl.col("is_lock").any().alias("lock"),
        pl.col("frames").filter(pl.col("is_pool")).first().alias("pool_site"),
        pl.col("frames").filter(~pl.col("is_plumbing")).first().alias("caller"),
        pl.col("frames").first().alias("leaf"),
    )
    return (stacks.with_row_index("stack").join(per, on="stack", how="left")
            .with_columns(
                pl.when(pl.col("pool")).then(pl.lit("pool")).when(pl.col("lock")).then(pl.lit("lock"))
                .otherwise(pl.lit("other")).alias("what"))
            .with_columns(
                pl.when(pl.col("what") == "pool").then(pl.col("pool_site"))
                .otherwise(pl.coalesce("caller", "leaf")).alias("site"))
            .sort("stack")
            .select("frames", "value", "what", "site"))


def shares(stacks: pl.DataFrame) -> dict[str, float]:
    """Value per kind of wait: {"total", "lock", "pool", "other"} (sums of |value|)."""
    c = classify(stacks)
    out = {"total": float(c["value"].abs().sum()) if c.height else 0.0}
    for what in ("lock", "pool", "other"):
        out[what] = float(c.filter(pl.col("what") == what)["value"].abs().sum()) if c.height else 0.0
    return out


def top_site(stacks: pl.DataFrame, what: str) -> tuple[str, float] | None:
    """The site with the most value among the stacks of one kind of wait."""
    c = classify(stacks).filter(pl.col("what") == what)
    if c.is_empty():
        return None
    top = (c.group_by("site").agg(pl.col("value").abs().sum())
           .sort(["value", "site"], descending=[True, False]).row(0))
    return str(top[0]), float(top[1])


def pool_wait_value(stacks: pl.DataFrame) -> float:
    return shares(stacks)["pool"]
