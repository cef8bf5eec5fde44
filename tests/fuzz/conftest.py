"""Fuzzing of every parser of untrusted input (hypothesis).

The property everywhere: any input either parses, or raises the module's documented input
error with one line naming the field; never another exception, never a hang, never NaN or
infinity in what comes out. The default profile is derandomized and small (each test about
two seconds or less) so the suite stays fast and deterministic; ``HYPOTHESIS_PROFILE=fuzz-long``
runs a random search 50 times longer.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz-long",
    max_examples=7500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))
