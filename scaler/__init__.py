"""scaler: a node autoscaler for Kubernetes on AWS that buys each pod the cheapest node that fits.

Layers (enforced by import-linter, see pyproject.toml):

- :mod:`scaler.core` — pure decisions (stdlib + NumPy): model, catalog, offerings, placement.
- :mod:`scaler.ports` — the small Protocols the loop talks to.
- :mod:`scaler.adapters` — Kubernetes, AWS, metrics: thin I/O translating to core types.
- :mod:`scaler.loop` — the reconciler and the task group that runs it.
- :mod:`scaler.cli` — the command line.
"""

__version__ = "0.1.0"
