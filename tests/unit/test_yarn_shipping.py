"""Shipping to YARN: content-hash caching on the cluster's file system, deterministic archives,
and the errors for what cannot be shipped."""

from __future__ import annotations

import os
import time
import zipfile

import pytest

from pyflow.deploy.yarn.shipping import Shipment, Stager, file_sha256, pyflow_archive, write_zip
from pyflow.errors import DeploymentError


@pytest.fixture
def stager(tmp_path):
    return Stager(f"file://{tmp_path}/dfs/user/me/.pyflow")


def test_a_file_is_uploaded_once_under_the_hash_of_its_content(tmp_path, stager):
    local = tmp_path / "env.tar.gz"
    local.write_bytes(b"packed environment")
    url = stager.put(local)
    assert url == f"file://{tmp_path}/dfs/user/me/.pyflow/cache/{file_sha256(local)}/env.tar.gz"
    assert stager.uploaded == ["env.tar.gz"]
    again = Stager(stager.url)
    assert again.put(local) == url and again.uploaded == []
    local.write_bytes(b"a new environment")
    assert again.put(local) != url and again.uploaded == ["env.tar.gz"]


def test_a_relative_or_plain_path_staging_directory_becomes_a_file_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Stager("staging").url == f"file://{tmp_path}/staging"


def test_archives_of_the_same_content_are_byte_identical(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    first = write_zip(tmp_path / "one.zip", [("pkg/b.py", tmp_path / "b.py"), ("pkg/a.py", tmp_path / "a.py")])
    time.sleep(0.01)
    os.utime(tmp_path / "a.py")  # a newer modification time changes nothing
    second = write_zip(tmp_path / "two.zip", [("pkg/a.py", tmp_path / "a.py"), ("pkg/b.py", tmp_path / "b.py")])
    assert first.read_bytes() == second.read_bytes()


def test_pyflow_is_shipped_as_a_package_without_caches(tmp_path):
    archive = pyflow_archive(tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert "pyflow/__init__.py" in names and "pyflow/deploy/yarn/taskmanager.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert pyflow_archive(tmp_path / "again").read_bytes() == archive.read_bytes()


def test_environment_archives_must_exist_and_be_archives(tmp_path, stager):
    shipment = Shipment.create(stager)
    try:
        with pytest.raises(DeploymentError, match=r"'.*missing.tar.gz' \(yarn.python-environment\) does not exist"):
            shipment.ship_environment(str(tmp_path / "missing.tar.gz"))
        with pytest.raises(DeploymentError, match="not a .tar.gz, .tgz or .zip archive"):
            shipment.ship_environment(str(tmp_path / "env.rar"))
        with pytest.raises(DeploymentError, match="does not exist on the cluster's file system"):
            shipment.ship_environment(f"file://{tmp_path}/nowhere/env.zip".replace("file://", "hdfs://nn:8020"))
        packed = tmp_path / "my-env.tgz"
        packed.write_bytes(b"\x1f\x8b fake")
        shipment.ship_environment(str(packed))
        (shipped,) = shipment.files
        assert shipped.name == "environment" and shipped.archive and shipped.source.endswith("/environment.tgz")
    finally:
        shipment.cleanup()


def test_ship_files_ships_files_and_folders_and_refuses_what_does_not_exist(tmp_path, stager):
    (tmp_path / "lookup.csv").write_text("a,b\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.bin").write_bytes(b"\0")
    shipment = Shipment.create(stager)
    try:
        shipment.ship_user_files(f"{tmp_path / 'lookup.csv'}; {tmp_path / 'models'};")
        assert [(f.name, f.archive) for f in shipment.files] == [("lookup.csv", False), ("models", True)]
        with pytest.raises(DeploymentError, match="'.*nothing' in yarn.ship-files does not exist"):
            shipment.ship_user_files(str(tmp_path / "nothing"))
        with pytest.raises(DeploymentError, match="both called 'lookup.csv'"):
            shipment.ship_user_files(str(tmp_path / "lookup.csv"))
    finally:
        shipment.cleanup()
    assert not shipment.workdir.exists()
