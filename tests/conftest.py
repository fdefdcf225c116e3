"""Shared fixtures: one real embedded cluster for the integration tests of a session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYFLOW_LOG_DIR", str(ROOT / "log" / "tests"))


@pytest.fixture(scope="session")
def cluster():
    """A LocalCluster shared by the tests that do not need their own settings."""
    from pyflow.testing import test_cluster

    with test_cluster() as c:
        yield c


@pytest.fixture
def env(cluster):
    """A fresh environment bound to the shared cluster."""
    return cluster.environment()
