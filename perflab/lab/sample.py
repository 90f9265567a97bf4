"""The bundled sample service as a target: how a lab scenario becomes a `perflab run --target`.

A scenario (perflab.lab.scenarios) is a target whose service is ``sample_workload``
under uvicorn on a free 127.0.0.1 port, started with the scenario's settings as its
environment, its fix as the ``fixed`` variant, its k6 script as the load, its own
pprof endpoints and py-spy as profiles, and its metrics endpoint scraped like any
service's. What a user's target does not need is this module's setup: an ephemeral
PostgreSQL cluster (or PERFLAB_PG_DSN), seeded before the service starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from perflab.errors import PerflabError
from perflab.lab import scenarios
from perflab.lab.backing import Backing, SetupContext, last_line, pg_version
from perflab.lab.postgres import EphemeralPostgres, free_port
from perflab.lab.scenarios import WORKLOAD_DIR, Scenario
from perflab.lab.target import Load, Profiles, Service, Target, Variant, join_url

SEED_TIMEOUT_S = 300.0
HOST = "127.0.0.1"
# The sample service's readiness answer: 200 once its lifespan (pool, buffer) has started.
READY_PATH = "/healthz"
# ?db=0: the poll must not query PostgreSQL (its statistics would count the poll itself).


def scenario_target(scenario: Scenario, port: int | None = None) -> tuple[Target, SampleSetup]:
    """The target a scenario runs, and the setup that gives its service a seeded database."""
    port = port or free_port()
    base = f"http://{HOST}:{port}"
    settings = {**scenarios.BASE_SETTINGS, **scenario.settings}
    target = Target(
        name=scenario.name,
        description=scenario.why,
        signature=scenario.signature,
        service=Service(url=base, start=(sys.executable, "-m", "sample_workload", "serve"),
                        ready=join_url(base, READY_PATH), env=settings),
        load=Load(script=WORKLOAD_DIR / "k6" / scenario.script, rate=scenario.rate),
        folder=WORKLOAD_DIR.parent,
        # The service serves its own CPU sampler's profile as Go does; py-spy sees native
        # frames (bcrypt's native code) that sampler cannot (scenarios.SAMPLE_PYSPY). Its
        # heap profile turns tracemalloc on, which slows every allocation: not taken in a
        # timed run.
        profiles=Profiles(pprof=join_url(base, "/debug/pprof"), snapshots=(), pyspy=scenarios.SAMPLE_PYSPY),
        metrics_url=join_url(base, scenarios.METRICS_PATH),
        roles=dict(scenarios.SAMPLE_ROLES),
        variants={"fixed": Variant("fixed", env=dict(scenario.fix))} if scenario.fix else {},
    )
    return target, SampleSetup(base=base, port=port)


@dataclass(frozen=True)
class SampleSetup:
    """PostgreSQL for the sample service, seeded with the run's settings before it starts."""

    base: str
    port: int

    def __call__(self, ctx: SetupContext) -> Backing:
        t = time.perf_counter()
        ctx.say("starting PostgreSQL")
        pg = ctx.stack.enter_context(EphemeralPostgres())
        ctx.timings["postgres_start"] = round(time.perf_counter() - t, 3)
        # PORT and HOST are where the service listens, DATABASE_URL where this run's
        # database is: not settings (two runs differing there differ in nothing).
        service_env = {"DATABASE_URL": pg.dsn, "PORT": str(self.port), "HOST": HOST,
                       "SPILL_DIR": str(ctx.run_dir)}
        env = {**os.environ, **ctx.settings, **service_env}
        env.pop("PERFLAB_STORE", None)
        t = time.perf_counter()
        ctx.say("seeding the database")
        seed = subprocess.run([sys.executable, "-m", "sample_workload", "seed"], env=env,
                              cwd=WORKLOAD_DIR.parent, capture_output=True, text=True, timeout=SEED_TIMEOUT_S)
        (ctx.run_dir / "seed.log").write_text(seed.stdout + seed.stderr)
        if seed.returncode != 0:
            raise PerflabError(f"seeding failed: {last_line(seed.stderr or seed.stdout)}")
        ctx.timings["seed"] = round(time.perf_counter() - t, 3)
        return Backing(
            dsn=pg.dsn, postgres_pids=[pg.pid] if pg.pid else [], service_env=service_env,
            # The k6 scripts log in as user1..userN of the seeded users.
            k6_env={"USERS": ctx.settings.get("SEED_USERS", "5000")},
            postgres={"external": pg.external, "port": pg.port}, versions={"postgres": pg_version(pg.dsn)},
            final_vars_url=join_url(self.base, "/debug/vars"))
