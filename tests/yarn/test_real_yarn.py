"""The YARN scenario tests of tests/integration/test_yarn.py against a real YARN cluster.

    HADOOP_CONF_DIR=/etc/hadoop/conf pytest -m yarn tests/yarn

Opt-in (marker ``yarn``; the default test run deselects it): the cluster is found through ``yarn``
on PATH and ``HADOOP_CONF_DIR``, and every test skips, saying why, when there is none. The
nodes' Python comes from PYFLOW_TEST_YARN_PYTHON or PYFLOW_TEST_YARN_ENV_ARCHIVE
(tests/yarn/real_backend.py). The tests are the same functions as the double's; only the
``backend`` fixture differs. A test that needs the double's fault injection or a Kerberized
cluster skips with that reason.
"""

from __future__ import annotations

import pytest

from tests.integration import test_yarn as scenarios
from tests.yarn.real_backend import RealYarnBackend, missing_reason

pytestmark = pytest.mark.yarn


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    real = RealYarnBackend(tmp_path_factory.mktemp("real-yarn"))
    yield real
    real.close()


jobs = scenarios.jobs
session = scenarios.session
globals().update({name: test for name, test in vars(scenarios).items() if name.startswith("test_")})
