"""SIGHUP: which settings a re-read config changes. The daemon re-executes itself when
any did (``daemon.runtime.process.reexec``), so every service is built again from it."""

from __future__ import annotations

from typing import Any

from daemon.core.config import Config


def changed_keys(old: Config, new: Config) -> list[str]:
    """Dotted names of the settings that differ (``watch.settle_seconds``, ...)."""

    def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    before, after = flat(old.model_dump(mode="json")), flat(new.model_dump(mode="json"))
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
