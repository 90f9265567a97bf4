"""GET /challenges/{user_id}: the read path that builds a large JSON answer.

Five queries on one connection (the user, their challenges, those challenges'
goals, their per-challenge stats with leaderboard rank, their recent records), then
Python work per goal (progress, percent, status) and JSON serialization of ~60 KB:
the serialization-heavy path, like BuildChallengesResponse / processGoalsArray in
the load-test report this service imitates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse

from sample_workload.state import AppState, error_response

RECENT_RECORDS = 20

Q_USER = sa.text("SELECT id, name, display_name, country, level, created_at FROM users WHERE id = :u")
Q_CHALLENGES = sa.text(
    "SELECT c.id, c.code, c.name, c.description, c.starts_at, c.ends_at, uc.joined_at "
    "FROM user_challenges uc JOIN challenges c ON c.id = uc.challenge_id "
    "WHERE uc.user_id = :u ORDER BY c.id")
Q_GOALS = sa.text(
    "SELECT g.id, g.challenge_id, g.code, g.name, g.description, g.kind, g.target, g.reward_points, g.sort_order "
    "FROM goals g JOIN user_challenges uc ON uc.challenge_id = g.challenge_id "
    "WHERE uc.user_id = :u ORDER BY g.challenge_id, g.sort_order")
# Rank = 1 + players with a better score in that challenge, read from the (challenge_id, score) index.
Q_STATS = sa.text(
    "SELECT s.challenge_id, s.games, s.total_score, s.best_score, "
    "  1 + (SELECT count(DISTINCT r.user_id) FROM game_records r "
    "       WHERE r.challenge_id = s.challenge_id AND r.score > s.best_score) AS rank "
    "FROM (SELECT challenge_id, count(*) AS games, sum(score) AS total_score, max(score) AS best_score "
    "      FROM game_records WHERE user_id = :u GROUP BY challenge_id) s")
Q_RECENT = sa.text(
    "SELECT record_id, challenge_id, score, duration_ms, level, accepted_at FROM game_records "
    "WHERE user_id = :u ORDER BY accepted_at DESC LIMIT :n")


async def get_challenges(request: Request) -> JSONResponse:
    state: AppState = request.app.state.workload
    try:
        user_id = int(request.path_params["user_id"])
    except ValueError:
        return error_response("bad_request", 400, "user_id must be an integer")
    async with state.db.connect() as conn:
        user = (await conn.execute(Q_USER, {"u": user_id})).mappings().first()
        if user is None:
            return error_response("not_found", 404, f"no user {user_id}")
        chals = (await conn.execute(Q_CHALLENGES, {"u": user_id})).mappings().all()
        goal_rows = (await conn.execute(Q_GOALS, {"u": user_id})).mappings().all()
        stats = (await conn.execute(Q_STATS, {"u": user_id})).mappings().all()
        recent = (await conn.execute(Q_RECENT, {"u": user_id, "n": RECENT_RECORDS})).mappings().all()
        await conn.rollback()
    return JSONResponse(build_response(user, chals, goal_rows, stats, recent))


def build_response(user: Any, chals: Any, goal_rows: Any, stats: Any, recent: Any) -> dict[str, Any]:
    by_challenge: dict[int, list[Any]] = {}
    for g in goal_rows:
        by_challenge.setdefault(g["challenge_id"], []).append(g)
    stat_of = {s["challenge_id"]: s for s in stats}
    out_challenges = []
    totals = {"completed": 0, "claimable_points": 0}
    for c in chals:
        st = stat_of.get(c["id"])
        progress = {
            "total_score": int(st["total_score"]) if st else 0,
            "games": int(st["games"]) if st else 0,
            "best_score": int(st["best_score"]) if st else 0,
        }
        goal_list = build_goals(by_challenge.get(c["id"], []), progress)
        done = sum(1 for g in goal_list if g["status"] == "completed")
        totals["completed"] += done
        totals["claimable_points"] += sum(g["reward_points"] for g in goal_list if g["claimable"])
        out_challenges.append({
            "id": c["id"], "code": c["code"], "name": c["name"], "description": c["description"],
            "starts_at": _iso(c["starts_at"]), "ends_at": _iso(c["ends_at"]), "joined_at": _iso(c["joined_at"]),
            "progress": progress,
            "leaderboard": {"rank": int(st["rank"]) if st else None, "best_score": progress["best_score"]},
            "goals_completed": done, "goals_total": len(goal_list),
            "goals": goal_list,
        })
    return {
        "user": {"id": user["id"], "name": user["name"], "display_name": user["display_name"],
                 "country": user["country"], "level": user["level"], "created_at": _iso(user["created_at"])},
        "summary": {"challenges": len(out_challenges), **totals},
        "challenges": out_challenges,
        "recent_records": [{
            "record_id": str(r["record_id"]), "challenge_id": r["challenge_id"], "score": r["score"],
            "duration_ms": r["duration_ms"], "level": r["level"], "accepted_at": _iso(r["accepted_at"]),
        } for r in recent],
    }


def build_goals(goal_rows: list[Any], progress: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for g in goal_rows:
        value = progress[g["kind"]]
        target = g["target"]
        completed = value >= target
        out.append({
            "id": g["id"], "code": g["code"], "name": g["name"], "description": g["description"],
            "kind": g["kind"], "target": target, "progress": min(value, target),
            "percent": round(100.0 * min(value, target) / target, 1) if target else 100.0,
            "status": "completed" if completed else ("in_progress" if value > 0 else "not_started"),
            "claimable": completed, "reward_points": g["reward_points"], "sort_order": g["sort_order"],
        })
    return out


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v
