"""Where the reconciler's observations go: one structlog event per decision, with keys a
person can grep (``event=scale_up pool=gpu-a10g count=1 price_usd_per_hour=1.006``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import structlog

Observer = Callable[[str, dict[str, object]], None]

_WARNINGS = {"reconcile_error", "scale_up_failed", "remove_failed", "launch_failed",
             "pool_disabled", "pool_backoff"}


def configure_logging(*, json: bool, level: str = "info") -> None:
    """structlog to stderr: JSON lines in a cluster (``--log-format json``), key=value on a
    terminal."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class LogObserver:
    """Logs every observation; ``also`` (the metrics exporter) sees them too."""

    def __init__(self, *also: Observer) -> None:
        self._log = structlog.get_logger("scaler")
        self._also = also

    def __call__(self, event: str, fields: dict[str, object]) -> None:
        if event in _WARNINGS:
            self._log.warning(event, **fields)
        else:
            self._log.info(event, **fields)
        for other in self._also:
            other(event, fields)
