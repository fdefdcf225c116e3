"""The pure parts of YARN deployment: the application spec, YARN's refusals as messages, the
client's Hadoop configuration, the yarn-session properties file and command-line memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyflow.cli.yarn_session import session_configuration
from pyflow.config import Configuration, options
from pyflow.deploy.yarn import session
from pyflow.deploy.yarn.cluster_descriptor import explain_refusal
from pyflow.deploy.yarn.hadoop_conf import HadoopConfiguration, read_site_file
from pyflow.deploy.yarn.shipping import ShippedFile
from pyflow.deploy.yarn.spec import build_application_spec
from pyflow.errors import DeploymentError

FILES = [ShippedFile("pyflow-container.sh", "file:///cache/a/pyflow-container.sh"),
         ShippedFile("pyflow-lib", "file:///cache/b/pyflow-lib.zip", archive=True),
         ShippedFile("job-graph.jobgraph", "file:///tmp/app/job-graph.jobgraph")]


def spec(settings: dict | None = None, files=FILES, **kwargs):
    return build_application_spec(Configuration(settings or {}), mode=kwargs.pop("mode", "per-job"), files=files,
                                  master_args=kwargs.pop("master_args", ["--mode", "per-job"]), **kwargs)


def test_the_taskmanager_service_starts_empty_with_the_taskmanager_resources():
    s = spec({"taskmanager.memory.process.size": "1g", "taskmanager.numberOfTaskSlots": 3})
    service = s["services"]["taskmanager"]
    assert service["instances"] == 0 and service["max_restarts"] == 0 and service["allow_failures"] is True
    assert service["resources"] == {"memory": 1024, "vcores": 3}  # vcores default to the slots
    assert "pyflow-container.sh taskmanager" in service["script"]


def test_vcores_and_the_masters_resources_come_from_their_options():
    s = spec({"yarn.containers.vcores": 2, "taskmanager.numberOfTaskSlots": 4,
              "jobmanager.memory.process.size": "1500m", "yarn.appmaster.vcores": 2})
    assert s["services"]["taskmanager"]["resources"]["vcores"] == 2
    assert s["master"]["resources"] == {"memory": 1500, "vcores": 2}


def test_memory_is_rounded_up_to_whole_mebibytes():
    assert spec({"taskmanager.memory.process.size": 1024 * 1024 * 100 + 1})["services"]["taskmanager"][
        "resources"]["memory"] == 101


def test_name_queue_tags_and_attempts_come_from_the_yarn_options():
    s = spec({"yarn.application.queue": "batch", "yarn.tags": "etl, nightly,", "yarn.application-attempts": 2},
             name_detail="word count")
    assert s["name"] == "pyflow per-job cluster: word count"
    assert (s["queue"], s["tags"], s["max_attempts"]) == ("batch", ["etl", "nightly"], 2)
    assert spec({"yarn.application.name": "mine"})["name"] == "mine"
    assert spec(mode="session", master_args=["--mode", "session"])["name"] == "pyflow session cluster"


def test_master_arguments_are_shell_quoted_into_the_master_script():
    s = spec(mode="application", master_args=["--mode", "application", "--", "two words", "it's"])
    assert s["master"]["script"].strip() == (
        "exec bash pyflow-container.sh jobmanager --mode application -- 'two words' 'it'\"'\"'s'")


def test_files_are_shipped_to_both_and_master_only_files_to_the_master():
    s = spec(master_only=["job-graph.jobgraph"])
    assert set(s["master"]["files"]) == {"pyflow-container.sh", "pyflow-lib", "job-graph.jobgraph"}
    assert set(s["services"]["taskmanager"]["files"]) == {"pyflow-container.sh", "pyflow-lib"}
    assert s["master"]["files"]["pyflow-lib"] == {"source": "file:///cache/b/pyflow-lib.zip", "type": "ARCHIVE"}


def test_the_nodes_python_is_used_unless_an_environment_is_shipped():
    assert spec({"python.executable": "/opt/py/bin/python3"})["master"]["env"] == {"PYFLOW_PYTHON": "/opt/py/bin/python3"}
    assert spec()["services"]["taskmanager"]["env"] == {"PYFLOW_PYTHON": "python3"}
    packed = spec(files=FILES + [ShippedFile("environment", "file:///cache/c/environment.tar.gz", archive=True)])
    assert "PYFLOW_PYTHON" not in packed["master"]["env"]


def test_the_spec_passes_skeins_own_validation():
    import sys

    if getattr(sys.modules.get("skein"), "IS_TEST_DOUBLE", False):
        from _real_skein.model import ApplicationSpec  # the double keeps the real model
    else:
        from skein import ApplicationSpec
    validated = ApplicationSpec.from_dict(spec(master_only=["job-graph.jobgraph"]))
    assert validated.services["taskmanager"].instances == 0


# ---- YARN's refusals ----------------------------------------------------------------------------

REFUSAL = ("Cannot submit the application to YARN: Invalid resource request, requested resource type=[{kind}] < 0 or "
           "greater than maximum allowed allocation. Requested resource=<memory:{mb}, vCores:{vc}>, maximum allowed "
           "allocation=<memory:2048, vCores:4>, please note that ...")


def test_a_too_large_master_names_the_jobmanager_memory():
    conf = Configuration({"jobmanager.memory.process.size": "3g"})
    text = explain_refusal(REFUSAL.format(kind="memory-mb", mb=3072, vc=1), conf, [])
    assert text.startswith("YARN refuses the JobManager (ApplicationMaster) container: it asks for 3072 MB")
    assert "Lower jobmanager.memory.process.size (now 3gb) below 2048 MB" in text


def test_too_large_taskmanagers_name_the_taskmanager_memory_or_vcores():
    conf = Configuration({"taskmanager.memory.process.size": "3g"})
    text = explain_refusal(REFUSAL.format(kind="memory-mb", mb=3072, vc=1), conf, [])
    assert "YARN refuses the TaskManager containers: they ask for 3072 MB" in text
    assert "Lower taskmanager.memory.process.size (now 3gb)" in text
    conf = Configuration({"taskmanager.numberOfTaskSlots": 8})
    text = explain_refusal(REFUSAL.format(kind="vcores", mb=1728, vc=8), conf, [])
    assert "Lower yarn.containers.vcores (now 8 vcores) to at most 4" in text
    assert "taskmanager.numberOfTaskSlots" in text


def test_an_unknown_queue_names_the_option_and_the_queues_there_are():
    text = explain_refusal("YARN application application_1_0002 ended before it ran (FAILED, final status FAILED): "
                           "Application application_1_0002 submitted by user me to unknown queue: etl",
                           Configuration(), ["batch", "default"])
    assert text == ("YARN rejected the application: the queue 'etl' does not exist; the cluster's queues are: "
                    "batch, default. Set yarn.application.queue (yarn-session -qu) to one of the cluster's queues.")


def test_other_refusals_keep_yarns_words():
    assert explain_refusal("Cannot submit: User bob cannot submit", Configuration(), []) == "Cannot submit: User bob cannot submit"


# ---- the client's Hadoop configuration ----------------------------------------------------------


def _site(path: Path, properties: dict) -> Path:
    rows = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in properties.items())
    path.write_text(f"<configuration>{rows}</configuration>")
    return path


def test_the_resource_manager_address_follows_hadoops_defaults_and_substitution(tmp_path):
    assert HadoopConfiguration({}).resource_manager_addresses() == [("0.0.0.0", 8032)]
    _site(tmp_path / "yarn-site.xml", {"yarn.resourcemanager.hostname": "rm.example.com"})
    _site(tmp_path / "core-site.xml", {"fs.defaultFS": "hdfs://nn.example.com:8020/"})
    conf = HadoopConfiguration.load({"HADOOP_CONF_DIR": str(tmp_path)})
    assert conf.resource_manager_addresses() == [("rm.example.com", 8032)]
    assert conf.default_fs() == "hdfs://nn.example.com:8020"
    assert conf.default_staging_directory().startswith("hdfs://nn.example.com:8020/user/")


def test_high_availability_resource_managers_are_all_listed():
    conf = HadoopConfiguration({"yarn.resourcemanager.ha.enabled": "true", "yarn.resourcemanager.ha.rm-ids": "rm1,rm2",
                                "yarn.resourcemanager.address.rm1": "a:8032", "yarn.resourcemanager.hostname.rm2": "b"})
    assert conf.resource_manager_addresses() == [("a", 8032), ("b", 8032)]


def test_an_unreachable_resource_manager_is_one_clear_error(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = HadoopConfiguration({"yarn.resourcemanager.address": f"127.0.0.1:{port}"}, "the test's yarn-site.xml")
    with pytest.raises(DeploymentError, match=rf"Cannot reach the YARN ResourceManager at 127.0.0.1:{port} .*"
                                              r"the address comes from the test's yarn-site.xml"):
        conf.check_resource_manager_reachable(timeout_s=1)


def test_a_broken_site_file_names_the_file(tmp_path):
    (tmp_path / "yarn-site.xml").write_text("<configuration><property>")
    with pytest.raises(DeploymentError, match="yarn-site.xml"):
        read_site_file(tmp_path / "yarn-site.xml")


# ---- yarn-session ---------------------------------------------------------------------------------


def test_the_properties_file_records_the_session_for_yarn_session_targets(tmp_path):
    conf = Configuration({"yarn.properties-file.location": str(tmp_path)})
    with pytest.raises(DeploymentError, match="yarn-session -d"):
        session.session_application_id(conf)
    path = session.write_properties(conf, "application_1700000000000_0007")
    assert path.parent == tmp_path and path.name.startswith(".yarn-properties-")
    assert "applicationID=application_1700000000000_0007" in path.read_text()
    assert session.session_application_id(conf) == "application_1700000000000_0007"
    explicit = conf.merged({"yarn.application.id": "application_1700000000000_0009"})
    assert session.session_application_id(explicit) == "application_1700000000000_0009"
    session.remove_properties(conf, "application_1700000000000_0001")  # another session's: kept
    assert path.exists()
    session.remove_properties(conf, "application_1700000000000_0007")
    assert not path.exists()


def test_a_malformed_application_id_is_refused():
    with pytest.raises(DeploymentError, match="not a YARN application id"):
        session.check_application_id("app_42")


def test_yarn_session_flags_set_flinks_options_and_plain_memory_is_megabytes():
    conf = session_configuration(("yarn.tags=x",), jobmanager_memory="1024", taskmanager_memory="2g", slots=3,
                                 name="my session", queue_name="batch", ship="a;b")
    assert conf.get(options.JM_PROCESS_MEMORY) == 1024 * 1024 * 1024
    assert conf.get(options.TM_PROCESS_MEMORY) == 2 * 1024 ** 3
    assert conf.get(options.NUM_TASK_SLOTS) == 3
    assert (conf.get(options.YARN_APPLICATION_NAME), conf.get(options.YARN_APPLICATION_QUEUE)) == ("my session", "batch")
    assert (conf.get(options.YARN_SHIP_FILES), conf.get(options.YARN_TAGS)) == ("a;b", "x")
