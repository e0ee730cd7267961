"""What Gemini costs: the price table, a ledger of every call and job (tokens and
dollars), and the budget cap that stops paid stages before total spend passes it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from daemon.core.config import Config, GeminiConfig, GeminiPrice
from daemon.core.errors import ConfigError, PermanentError
from daemon.core.logs import Event, get_logger

#: Jobs whose estimated cost is reserved against the budget until their real cost lands.
OPEN_JOB_STATES = ("preparing", "submitted")


class BudgetReached(PermanentError):
    """The next paid step would take spend past ``gemini.budget_usd``."""


def price_of(config: GeminiConfig, model: str) -> GeminiPrice:
    """The interactive price of ``model``; a model without a price cannot be budgeted."""
    price = config.prices.get(model.removeprefix("models/"))
    if price is None:
        raise ConfigError(
            f'gemini.prices: no price for model {model!r}; add [gemini.prices."{model}"]'
            " with input_per_m and output_per_m (USD per 1M tokens)"
        )
    return price


def cost_usd(
    config: GeminiConfig, model: str, input_tokens: int, output_tokens: int, *, batch: bool
) -> float:
    """Dollars for these tokens; the Batch API bills ``batch_discount`` of the list price."""
    price = price_of(config, model)
    dollars = (input_tokens * price.input_per_m + output_tokens * price.output_per_m) / 1e6
    return dollars * (config.batch_discount if batch else 1.0)


def record_call(
    db: Database,
    *,
    stage: str,
    model: str,
    mode: str,
    requests: int,
    input_tokens: int,
    output_tokens: int,
    estimated: bool,
    cost: float,
    now: float,
    job_id: int | None = None,
) -> None:
    db.execute(
        "INSERT INTO gemini_calls (at, stage, model, mode, job_id, requests, input_tokens,"
        " output_tokens, estimated, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            now,
            stage,
            model,
            mode,
            job_id,
            requests,
            input_tokens,
            output_tokens,
            int(estimated),
            cost,
        ],
    )


def spent(db: Database | sqlite3.Connection) -> float:
    """Dollars recorded so far, all stages."""
    return float(db.execute("SELECT coalesce(sum(cost_usd), 0) FROM gemini_calls").fetchone()[0])


def reserved(db: Database | sqlite3.Connection) -> float:
    """Estimated dollars of jobs submitted but not yet billed."""
    marks = ", ".join("?" for _ in OPEN_JOB_STATES)
    row = db.execute(
        f"SELECT coalesce(sum(estimated_usd), 0) FROM gemini_jobs WHERE state IN ({marks})",
        list(OPEN_JOB_STATES),
    ).fetchone()
    return float(row[0])


def remaining(db: Database | sqlite3.Connection, config: GeminiConfig) -> float:
    return config.budget_usd - spent(db) - reserved(db)


def check_budget(
    db: Database | sqlite3.Connection,
    config: GeminiConfig,
    *,
    stage: str,
    needed: float,
    now: float | None = None,
) -> None:
    """Raise BudgetReached (and log and record it) if ``needed`` more would pass the cap."""
    left = remaining(db, config)
    if needed <= left:
        return
    db.execute(
        "INSERT INTO gemini_budget_stops (at, stage, needed_usd, remaining_usd)"
        " VALUES (?, ?, ?, ?)",
        [now if now is not None else time.time(), stage, needed, left],
    )
    if isinstance(db, sqlite3.Connection):
        db.commit()
    message = (
        f"Gemini budget reached: {stage} needs ${needed:.4f} but only ${max(left, 0):.4f} of"
        f" gemini.budget_usd=${config.budget_usd:.2f} is left; paid {stage} work stops"
        " (raise gemini.budget_usd to continue)"
    )
    get_logger().warning(
        Event.BUDGET_REACHED,
        stage=stage,
        needed_usd=round(needed, 6),
        remaining_usd=round(left, 6),
        budget_usd=config.budget_usd,
        message=message,
    )
    raise BudgetReached(message)


class Ledger:
    """The cost ledger for providers built from the config alone (the embedder and the
    interactive judge): its own short-lived connection to the root's DB, so a call is
    recorded the moment it is paid for, whatever the stage does next."""

    def __init__(self, db_path: Path, config: GeminiConfig) -> None:
        self.db_path = db_path
        self.config = config

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=30)

    def check(self, stage: str, needed: float) -> None:
        conn = self._connect()
        try:
            check_budget(conn, self.config, stage=stage, needed=needed)
        finally:
            conn.close()

    def record(self, **fields: Any) -> None:
        conn = self._connect()
        try:
            with conn:
                record_call(Database(conn), now=time.time(), **fields)
        finally:
            conn.close()


def spend_summary(db: Database, config: Config) -> dict[str, Any]:
    """Spend per stage and model, the budget, what is left, jobs by state, and whether the
    cap has stopped paid work (for ``inboxd status`` and ``inboxd report``). A DB the
    0004_gemini migration has not reached yet (an old daemon still running) reads as
    no spend."""
    if not db["gemini_calls"].exists():
        return {
            "budget_usd": config.gemini.budget_usd,
            "spent_usd": 0.0,
            "reserved_usd": 0.0,
            "remaining_usd": config.gemini.budget_usd,
            "by_stage": [],
            "jobs": {},
            "budget_stopped": False,
            "last_budget_stop": None,
        }
    rows = db.execute(
        "SELECT stage, model, mode, count(*), sum(requests), sum(input_tokens),"
        " sum(output_tokens), sum(estimated), sum(cost_usd) FROM gemini_calls"
        " GROUP BY stage, model, mode ORDER BY stage, model, mode"
    ).fetchall()
    by_stage = [
        {
            "stage": stage,
            "model": model,
            "mode": mode,
            "calls": int(calls),
            "requests": int(requests),
            "input_tokens": int(tin),
            "output_tokens": int(tout),
            "estimated_calls": int(est),
            "cost_usd": round(float(cost), 6),
        }
        for stage, model, mode, calls, requests, tin, tout, est, cost in rows
    ]
    jobs = dict(db.execute("SELECT state, count(*) FROM gemini_jobs GROUP BY state").fetchall())
    stop = db.execute(
        "SELECT at, stage, needed_usd, remaining_usd FROM gemini_budget_stops"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    total = spent(db)
    held = reserved(db)
    return {
        "budget_usd": config.gemini.budget_usd,
        "spent_usd": round(total, 6),
        "reserved_usd": round(held, 6),
        "remaining_usd": round(config.gemini.budget_usd - total - held, 6),
        "by_stage": by_stage,
        "jobs": {str(k): int(v) for k, v in jobs.items()},
        # Stopped now: the last refused step still would not fit in what is left.
        "budget_stopped": stop is not None
        and config.gemini.budget_usd - total - held < float(stop[2]),
        "last_budget_stop": None
        if stop is None
        else {"at": stop[0], "stage": stop[1], "needed_usd": stop[2], "remaining_usd": stop[3]},
    }
