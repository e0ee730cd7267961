"""What Gemini costs: the price table, the :class:`Ledger` every paid call goes through
(checked against the budget before, recorded after), and the spend summary.

The ledger writes through the Store it is given: in the daemon that is the daemon's one
write connection (under its lock, so the search thread's query embeddings and the
pipeline take turns); a command that only reads records on a short-lived connection.
"""

from __future__ import annotations

import time
from typing import Any

from daemon.core.config import Config
from daemon.core.config_sections import GeminiConfig, GeminiPrice
from daemon.core.errors import ConfigError, PermanentError
from daemon.core.logs import Event, get_logger
from daemon.store import Connection, Store, read_through, write_through
from daemon.store import gemini as ledger_db
from daemon.store.gemini import PaidCall


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


def remaining(db: Connection, config: GeminiConfig) -> float:
    """Dollars left under the cap: the budget less what was spent and what open jobs hold."""
    return config.budget_usd - ledger_db.spent(db) - ledger_db.reserved(db)


class Ledger:
    """The budget check and the cost record of paid calls, for one root.

    ``store`` is where records go (see the module docstring); None for a provider built
    outside any Store (``inboxd ask``, a gold-set run), which records on its own
    short-lived connection to ``config.db_path``.
    """

    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.config = config.gemini
        self.db_path = config.db_path
        self.store = store

    def remaining(self) -> float:
        with read_through(self.db_path, self.store) as db:
            return remaining(db, self.config)

    def check(self, stage: str, needed: float, now: float | None = None) -> None:
        """Raise BudgetReached (and log and record it) if ``needed`` more would pass the cap."""
        left = self.remaining()
        if needed <= left:
            return
        with write_through(self.db_path, self.store) as db:
            ledger_db.record_budget_stop(
                db,
                stage=stage,
                needed=needed,
                remaining=left,
                now=time.time() if now is None else now,
            )
        budget = self.config.budget_usd
        message = (
            f"Gemini budget reached: {stage} needs ${needed:.4f} but only ${max(left, 0):.4f} of"
            f" gemini.budget_usd=${budget:.2f} is left; paid {stage} work stops"
            " (raise gemini.budget_usd to continue)"
        )
        get_logger().warning(
            Event.BUDGET_REACHED,
            stage=stage,
            needed_usd=round(needed, 6),
            remaining_usd=round(left, 6),
            budget_usd=budget,
            message=message,
        )
        raise BudgetReached(message)

    def record(self, call: PaidCall, now: float | None = None) -> None:
        """One paid call, recorded the moment it is paid for, whatever the caller does next."""
        with write_through(self.db_path, self.store) as db:
            ledger_db.record_call(db, call, time.time() if now is None else now)


def spend_summary(db: Connection, config: Config) -> dict[str, Any]:
    """Spend per stage and model, the budget, what is left, jobs by state, and whether the
    cap has stopped paid work (for ``inboxd status`` and ``inboxd report``). A DB the
    0004_gemini migration has not reached yet (an old daemon still running) reads as
    no spend."""
    if not ledger_db.has_ledger(db):
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
    by_stage = ledger_db.spend_by_stage(db)
    stop = ledger_db.last_budget_stop(db)
    total = ledger_db.spent(db)
    held = ledger_db.reserved(db)
    return {
        "budget_usd": config.gemini.budget_usd,
        "spent_usd": round(total, 6),
        "reserved_usd": round(held, 6),
        "remaining_usd": round(config.gemini.budget_usd - total - held, 6),
        "by_stage": by_stage,
        "jobs": ledger_db.jobs_by_state(db),
        # Stopped now: the last refused step still would not fit in what is left.
        "budget_stopped": stop is not None
        and config.gemini.budget_usd - total - held < float(stop["needed_usd"]),
        "last_budget_stop": stop,
    }
