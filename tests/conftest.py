"""Root conftest: shared fixtures live in tests/fixtures/ and are loaded as plugins from here.

- tests/fixtures/kube.py: ``kube_env``, ``kube_ns`` (real kube-apiserver + kube-scheduler)
- tests/fixtures/aws.py: ``moto_server``, ``aws`` (moto in server mode)
- here: ``anyio_backend``, and ``catalog`` (the embedded instance catalog, loaded once)

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

from scaler.core.catalog import Catalog  # noqa: E402 - after the path setup above


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, the loop aiobotocore needs."""
    return "asyncio"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The embedded us-east-1 catalog (frozen, so one load serves every test)."""
    return Catalog.load()
