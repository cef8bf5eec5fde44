"""Where the loop's events go as logs: one structlog line per typed event
(:mod:`scaler.telemetry`), its name and fields as keys a person can grep
(``event=scale_up pool=gpu-a10g count=1 price_usd_per_hour=1.006``)."""

from __future__ import annotations

import logging
import sys
from typing import Final

import structlog

from scaler.telemetry import (
    ClusterSeen,
    Event,
    LaunchFailed,
    PoolBackedOff,
    PoolDisabled,
    ReconcileFailed,
    RemoveFailed,
    ScaleUpFailed,
    Telemetry,
)

Observer = Telemetry

WARNINGS: Final = (ReconcileFailed, ScaleUpFailed, RemoveFailed, LaunchFailed, PoolDisabled,
                   PoolBackedOff)
"""Logged at warning level; everything else at info, but :data:`QUIET` at debug."""
QUIET: Final = (ClusterSeen,)
"""Every tick has one: a line each would bury the rest."""


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
    """Logs every event; ``also`` (the metrics exporter) sees them too."""

    def __init__(self, *also: Telemetry) -> None:
        self._log = structlog.get_logger("scaler")
        self._also = also

    def __call__(self, event: Event) -> None:
        if isinstance(event, WARNINGS):
            self._log.warning(event.name, **event.fields())
        elif isinstance(event, QUIET):
            self._log.debug(event.name, **event.fields())
        else:
            self._log.info(event.name, **event.fields())
        for other in self._also:
            other(event)
