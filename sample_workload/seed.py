"""Schema and seed data: users with bcrypt hashes, challenges with goals, game records.

Idempotent, and one transaction: run it twice and nothing changes; run it with more
SEED_USERS and only the missing users (with their enrolments and records) are added;
run it with another BCRYPT_COST and every stored hash is replaced by one of that cost
(login cost is the stored hash's cost, not the setting's, so they must agree).

Every user has the same password, so one hash serves all of them: seeding 5,000 users
costs one bcrypt hash instead of 5,000 (about 5 minutes at cost 12).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import bcrypt
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sample_workload.db import Database, challenges, game_records, goals, metadata, user_challenges, users
from sample_workload.settings import Settings

log = logging.getLogger("sample_workload.seed")

SEED_PASSWORD = "password"
N_CHALLENGES = 10
GOALS_PER_CHALLENGE = 50  # the load-test reports' shape: 10 challenges, 50 goals each
CHALLENGES_PER_USER = 5
ADVISORY_LOCK_KEY = 7_272_001  # serializes two seeders (SEED=1 at start and a manual seed)
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)  # fixed, so seeded rows are reproducible
GOAL_KINDS = ("total_score", "games", "best_score")
COUNTRIES = ("DE", "FR", "US", "BR", "JP", "KR", "SE", "PL", "ES", "IN")


def user_challenge_ids(user_id: int) -> list[int]:
    """Half of the challenges, different halves for odd and even users."""
    return [c for c in range(1, N_CHALLENGES + 1) if (c + user_id) % 2 == 0][:CHALLENGES_PER_USER]


def hash_cost(password_hash: str) -> int:
    # "$2b$12$<salt+hash>": the cost is the second field.
    return int(password_hash.split("$")[2])


async def seed(db: Database, settings: Settings) -> dict[str, Any]:
    """Create the schema and whatever seed rows are missing; returns what it did."""
    t0 = time.perf_counter()
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        await conn.run_sync(metadata.create_all)
        done: dict[str, Any] = {}
        done["challenges_added"] = await _seed_challenges(conn)
        added = await _seed_users(conn, settings)
        done["users_added"] = len(added)
        done["hashes_replaced"] = await _rehash(conn, settings)
        done["records_added"] = await _seed_records(conn, added, settings.seed_records_per_user)
        total = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
        done["users"] = int(total)
    done["seconds"] = round(time.perf_counter() - t0, 3)
    log.info("seed: %s", done)
    return done


async def _seed_challenges(conn: AsyncConnection) -> int:
    have = (await conn.execute(sa.select(sa.func.count()).select_from(challenges))).scalar_one()
    if have >= N_CHALLENGES:
        return 0
    rows, goal_rows = [], []
    for c in range(have + 1, N_CHALLENGES + 1):
        rows.append({
            "id": c, "code": f"season-{c:02d}", "name": f"Season {c} challenge",
            "description": f"Seasonal challenge {c}: finish the goals below before the season ends "
                           f"to earn points, badges and a place on the leaderboard.",
            "starts_at": EPOCH + timedelta(days=30 * (c - 1)),
            "ends_at": EPOCH + timedelta(days=30 * c + 365),
        })
        for g in range(1, GOALS_PER_CHALLENGE + 1):
            kind = GOAL_KINDS[g % len(GOAL_KINDS)]
            target = {"total_score": 2_000 * g, "games": 2 * g, "best_score": 150 * g}[kind]
            goal_rows.append({
                "id": (c - 1) * GOALS_PER_CHALLENGE + g, "challenge_id": c, "code": f"c{c:02d}-g{g:02d}",
                "name": f"{kind.replace('_', ' ').title()} {target}",
                "description": f"Reach {target} in {kind.replace('_', ' ')} during season {c} "
                               f"(goal {g} of {GOALS_PER_CHALLENGE}).",
                "kind": kind, "target": target, "reward_points": 10 * g, "sort_order": g,
            })
    await _bulk(conn, challenges, rows)
    await _bulk(conn, goals, goal_rows)
    return len(rows)


async def _seed_users(conn: AsyncConnection, settings: Settings) -> list[int]:
    existing = set((await conn.execute(sa.select(users.c.id))).scalars())
    missing = [i for i in range(1, settings.seed_users + 1) if i not in existing]
    if not missing:
        return []
    pw_hash = bcrypt.hashpw(SEED_PASSWORD.encode(), bcrypt.gensalt(settings.bcrypt_cost)).decode()
    user_rows = [{
        "id": i, "name": f"user{i}", "password_hash": pw_hash, "display_name": f"Player {i}",
        "country": COUNTRIES[i % len(COUNTRIES)], "level": 1 + i % 60,
        "created_at": EPOCH + timedelta(minutes=i),
    } for i in missing]
    await _bulk(conn, users, user_rows)
    enrol = [{"user_id": i, "challenge_id": c, "joined_at": EPOCH + timedelta(days=c, minutes=i)}
             for i in missing for c in user_challenge_ids(i)]
    await _bulk(conn, user_challenges, enrol)
    return missing


async def _rehash(conn: AsyncConnection, settings: Settings) -> int:
    stored = (await conn.execute(sa.select(users.c.password_hash).limit(1))).scalar_one_or_none()
    if stored is None or hash_cost(stored) == settings.bcrypt_cost:
        return 0
    pw_hash = bcrypt.hashpw(SEED_PASSWORD.encode(), bcrypt.gensalt(settings.bcrypt_cost)).decode()
    result = await conn.execute(users.update().values(password_hash=pw_hash))
    return int(result.rowcount)


async def _seed_records(conn: AsyncConnection, user_ids: list[int], per_user: int) -> int:
    if not user_ids or per_user == 0:
        return 0
    rows = []
    for u in user_ids:
        rng = random.Random(u)
        cids = user_challenge_ids(u)
        for k in range(per_user):
            rows.append({
                "record_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "user_id": u, "challenge_id": cids[k % len(cids)],
                "score": rng.randint(0, 10_000), "duration_ms": rng.randint(30_000, 600_000),
                "level": rng.randint(1, 60),
                "accepted_at": EPOCH + timedelta(days=k, seconds=rng.randint(0, 86_399)),
            })
    await _bulk(conn, game_records, rows)
    return len(rows)


async def _bulk(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """COPY on PostgreSQL (50,000 records in ~0.3 s instead of ~3 s of multi-row INSERTs)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        await conn.execute(table.insert(), rows)
        return
    cols = list(rows[0])
    raw = await conn.get_raw_connection()
    async with raw.driver_connection.cursor() as cur:
        async with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for r in rows:
                await copy.write_row(tuple(r[c] for c in cols))
