"""Root conftest: shared fixtures live in tests/fixtures/ and are loaded as plugins from here.

- tests/fixtures/kube.py: ``kube_env``, ``kube_ns`` (real kube-apiserver + kube-scheduler)
- tests/fixtures/aws.py: ``moto_server``, ``aws`` (moto in server mode)

See docs/testing.md.
"""

import sys
from pathlib import Path

import pytest

# Make ``tests.fixtures`` (and ``scaler``) importable however pytest is launched.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

pytest_plugins = ["tests.fixtures.kube", "tests.fixtures.aws"]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, the loop aiobotocore needs."""
    return "asyncio"
