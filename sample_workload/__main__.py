"""python -m sample_workload [serve|seed]

serve (the default): uvicorn, one worker, on 127.0.0.1:PORT.
seed: create the schema and the seed rows (idempotent), print what was done as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sample_workload.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_workload",
                                     description="The sample service perflab puts under load.")
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "seed"))
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"sample_workload: {e}", file=sys.stderr)
        return 2
    if args.command == "seed":
        return _seed(settings)
    import uvicorn

    from sample_workload.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level=settings.log_level,
        # One log line per request would cost more CPU than some handlers.
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
    )
    return 0


def _seed(settings: Settings) -> int:
    import logging

    from sample_workload.db import Database
    from sample_workload.metrics import Metrics
    from sample_workload.seed import seed

    logging.basicConfig(level=settings.log_level.upper())

    async def run() -> dict[str, object]:
        db = Database(settings, Metrics())
        try:
            return await seed(db, settings)
        finally:
            await db.dispose()

    print(json.dumps(asyncio.run(run()), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
