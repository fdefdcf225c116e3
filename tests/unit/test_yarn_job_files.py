"""What a job ships to YARN: its file and the local modules it imports, found without running it;
imports that do not resolve fail before submission, naming the module."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pyflow.deploy.yarn.job_files import collect_job_files
from pyflow.errors import ProgramError


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_local_modules_and_packages_are_shipped_installed_ones_are_not(tmp_path):
    write(tmp_path, {
        "job.py": """\
            import json, os.path
            import numpy as np
            import helper
            from shop import orders
            from shop.pricing import net
            """,
        "helper.py": "import shop.util\n",
        "shop/__init__.py": "",
        "shop/orders.py": "from . import pricing\nfrom .util import tool\n",
        "shop/pricing.py": "def net(x): return x\n",
        "shop/util.py": "import csv\n",
        "shop/data/rates.csv": "a,b\n",
        "unused.py": "import nothing_here\n",
    })
    found = collect_job_files(tmp_path / "job.py", search_path=[])
    assert found.missing == []
    assert sorted(found.files) == ["helper.py", "job.py", "shop/__init__.py", "shop/data/rates.csv",
                                   "shop/orders.py", "shop/pricing.py", "shop/util.py"]
    found.check()


def test_a_missing_import_names_the_module_the_file_and_the_line(tmp_path):
    write(tmp_path, {"job.py": """\
        from pyflow import StreamExecutionEnvironment

        def enrich(x):
            import geo_enricher_xyz  # runs on the TaskManagers
            return x
        """})
    found = collect_job_files(tmp_path / "job.py", search_path=[])
    with pytest.raises(ProgramError, match=r"The job imports 'geo_enricher_xyz' \(.*job.py, line 4\), which is "
                                           r"neither installed in this Python nor a module next to the job"):
        found.check()


def test_missing_imports_of_local_modules_and_submodules_are_found_too(tmp_path):
    write(tmp_path, {"job.py": "import helper\nimport shop.nothing\n", "helper.py": "import not_installed_abc\n",
                     "shop/__init__.py": ""})
    found = collect_job_files(tmp_path / "job.py", search_path=[])
    assert [(m.module, m.file.name, m.line) for m in found.missing] == [
        ("shop.nothing", "job.py", 2), ("not_installed_abc", "helper.py", 1)]


def test_optional_and_type_checking_imports_may_be_missing(tmp_path):
    write(tmp_path, {"job.py": """\
        from typing import TYPE_CHECKING
        try:
            import ujson_missing as json
        except ImportError:
            import json
        try:
            import fast_missing
        except (ModuleNotFoundError, AttributeError):
            fast_missing = None
        if TYPE_CHECKING:
            import stubs_missing
        """})
    assert collect_job_files(tmp_path / "job.py", search_path=[]).missing == []


def test_modules_found_through_the_search_path_keep_their_layout(tmp_path):
    write(tmp_path, {"jobs/job.py": "import common.io\n", "lib/common/__init__.py": "", "lib/common/io.py": ""})
    found = collect_job_files(tmp_path / "jobs" / "job.py", search_path=[str(tmp_path / "lib")])
    assert sorted(found.files) == ["common/__init__.py", "common/io.py", "job.py"]


def test_pyflow_itself_is_not_a_local_module(tmp_path):
    write(tmp_path, {"job.py": "from pyflow import StreamExecutionEnvironment\nimport pyflow.api\n"})
    found = collect_job_files(tmp_path / "job.py", search_path=[str(Path.cwd())])
    assert sorted(found.files) == ["job.py"] and found.missing == []


def test_a_job_file_that_does_not_parse_is_a_program_error(tmp_path):
    write(tmp_path, {"job.py": "import helper\n", "helper.py": "def (:\n"})
    with pytest.raises(ProgramError, match="Cannot read the imports of .*helper.py"):
        collect_job_files(tmp_path / "job.py", search_path=[])
