"""Unit tests of pyflow.config: option parsing, loading precedence, errors, views, the yaml file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from pyflow.config import (
    ALL_OPTIONS,
    ConfigOption,
    Configuration,
    JobManagerConfiguration,
    MemorySize,
    NetworkConfiguration,
    TaskManagerConfiguration,
    options,
    render_yaml,
    resolve_log_dir,
)
from pyflow.config.configuration import default_conf_dir
from pyflow.config.options import build_registry, format_duration, parse_duration
from pyflow.errors import ConfigurationError

MB = 1024**2
REPO_CONF = Path(__file__).resolve().parents[2] / "conf" / "pyflow-conf.yaml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PYFLOW_* variable of the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("PYFLOW_"):
            monkeypatch.delenv(name)


def write_conf(directory: Path, text: str) -> Path:
    path = directory / "pyflow-conf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- value types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1728m", 1728 * MB),
        ("64mb", 64 * MB),
        ("1 gb", 1024**3),
        ("32kb", 32 * 1024),
        ("1024", 1024),
        ("512 b", 512),
        ("2T", 2 * 1024**4),
        ("3 MiB", 3 * MB),
        (" 7k ", 7 * 1024),
        (4096, 4096),
        (0, 0),
    ],
)
def test_memory_size_parses(text, expected):
    assert MemorySize(text) == expected
    assert isinstance(MemorySize(text), MemorySize)


@pytest.mark.parametrize("bad", ["", "abc", "1.5g", "-1m", "12 parsecs", "m", -5, True, 1.5, None])
def test_memory_size_rejects(bad):
    with pytest.raises(ValueError):
        MemorySize(bad)


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("1728m", "1728mb"),
        ("1024k", "1mb"),
        ("1 gb", "1gb"),
        (1536, "1536b"),
        (0, "0b"),
        ("3t", "3tb"),
    ],
)
def test_memory_size_renders_compactly_and_round_trips(value, rendered):
    size = MemorySize(value)
    assert str(size) == rendered
    assert MemorySize(str(size)) == size
    assert repr(size) == f"MemorySize({rendered!r})"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100 ms", timedelta(milliseconds=100)),
        ("100ms", timedelta(milliseconds=100)),
        ("10 s", timedelta(seconds=10)),
        ("10s", timedelta(seconds=10)),
        ("3 seconds", timedelta(seconds=3)),
        ("1 min", timedelta(minutes=1)),
        ("2 minutes", timedelta(minutes=2)),
        ("2 h", timedelta(hours=2)),
        ("1 d", timedelta(days=1)),
        ("5 millis", timedelta(milliseconds=5)),
        ("500", timedelta(milliseconds=500)),
        ("0", timedelta(0)),
        (250, timedelta(milliseconds=250)),
        (timedelta(seconds=3), timedelta(seconds=3)),
    ],
)
def test_duration_parses(value, expected):
    assert parse_duration(value) == expected


@pytest.mark.parametrize("bad", ["", "abc", "1.5 s", "-1 s", "10 fortnights", -3, True, 1.5, None,
                                 timedelta(seconds=-1)])
def test_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (timedelta(milliseconds=100), "100 ms"),
        (timedelta(seconds=10), "10 s"),
        (timedelta(minutes=5), "5 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(days=1), "1 d"),
        (timedelta(milliseconds=1500), "1500 ms"),
        (timedelta(microseconds=7), "7 us"),
        (timedelta(0), "0 ms"),
    ],
)
def test_duration_renders_and_round_trips(value, rendered):
    assert format_duration(value) == rendered
    assert parse_duration(rendered) == value


@pytest.mark.parametrize("text", ["true", "TRUE", "yes", "Yes", "1", True, 1])
def test_bool_true(text):
    assert options.ATTACHED.parse(text) is True


@pytest.mark.parametrize("text", ["false", "False", "no", "NO", "0", False, 0])
def test_bool_false(text):
    assert options.ATTACHED.parse(text) is False


@pytest.mark.parametrize("bad", ["maybe", "", "2", 2, None])
def test_bool_rejects(bad):
    with pytest.raises(ConfigurationError, match="expected true or false"):
        options.ATTACHED.parse(bad)


def test_int_parses_ints_and_digit_strings():
    assert options.NUM_TASK_SLOTS.parse("4") == 4
    assert options.NUM_TASK_SLOTS.parse(" 4 ") == 4
    assert options.NUM_TASK_SLOTS.parse(3) == 3


@pytest.mark.parametrize("bad", ["1.5", "abc", "", 1.5, 2.0, True, None, "0", 0])
def test_int_rejects(bad):
    with pytest.raises(ConfigurationError):
        options.NUM_TASK_SLOTS.parse(bad)


def test_int_error_message_names_value_key_expectation_and_example():
    with pytest.raises(ConfigurationError) as info:
        options.NUM_TASK_SLOTS.parse("abc")
    assert str(info.value) == (
        "Invalid value 'abc' for 'taskmanager.numberOfTaskSlots': expected an integer >= 1, "
        "e.g. 'taskmanager.numberOfTaskSlots: 2'."
    )


def test_int_bounds():
    assert options.MAX_PARALLELISM.parse(32768) == 32768
    with pytest.raises(ConfigurationError, match="expected an integer between 1 and 32768"):
        options.MAX_PARALLELISM.parse(32769)
    assert options.TM_RPC_PORT.parse("0") == 0
    with pytest.raises(ConfigurationError):
        options.TM_RPC_PORT.parse(-1)


def test_float_accepts_ints_and_strings_within_bounds():
    assert options.MANAGED_MEMORY_FRACTION.parse(1) == 1.0
    assert isinstance(options.MANAGED_MEMORY_FRACTION.parse(0), float)
    assert options.MANAGED_MEMORY_FRACTION.parse("0.25") == 0.25


@pytest.mark.parametrize("bad", ["abc", 1.5, -0.1, "nan", "inf", True, None])
def test_float_rejects(bad):
    with pytest.raises(ConfigurationError, match="expected a number between 0 and 1"):
        options.MANAGED_MEMORY_FRACTION.parse(bad)


def test_choices_are_case_insensitive_and_normalized():
    assert options.RUNTIME_MODE.parse("batch") == "BATCH"
    assert options.RUNTIME_MODE.parse(" Automatic ") == "AUTOMATIC"
    assert options.TARGET.parse("YARN-PER-JOB") == "yarn-per-job"
    assert options.LOG_LEVEL.parse("debug") == "DEBUG"


def test_choices_error_lists_choices():
    with pytest.raises(ConfigurationError) as info:
        options.RUNTIME_MODE.parse("fast")
    message = str(info.value)
    assert "Invalid value 'fast' for 'execution.runtime-mode'" in message
    assert "expected one of: STREAMING, BATCH, AUTOMATIC" in message
    assert "e.g. 'execution.runtime-mode: BATCH'" in message
    with pytest.raises(ConfigurationError, match="expected one of: local, remote, yarn-per-job"):
        options.TARGET.parse("yarn-perjob")


def test_memory_and_duration_option_errors():
    with pytest.raises(ConfigurationError) as info:
        options.TM_PROCESS_MEMORY.parse("lots")
    assert "expected a memory size" in str(info.value)
    assert "e.g. 'taskmanager.memory.process.size: 1728mb'" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        options.HEARTBEAT_INTERVAL.parse("soon")
    assert "expected a duration" in str(info.value)
    assert "e.g. 'heartbeat.interval: 10 s'" in str(info.value)
    with pytest.raises(ConfigurationError, match=">= 1kb"):
        options.SEGMENT_SIZE.parse("100b")


def test_str_options_take_scalars():
    assert options.PIPELINE_NAME.parse("my job") == "my job"
    assert options.PIPELINE_NAME.parse(123) == "123"
    assert options.PIPELINE_NAME.parse(None) == ""
    with pytest.raises(ConfigurationError, match="expected a string"):
        options.PIPELINE_NAME.parse(["a", "b"])


def test_defaults_are_stored_parsed():
    assert options.JM_PROCESS_MEMORY.default == 1600 * MB
    assert isinstance(options.JM_PROCESS_MEMORY.default, MemorySize)
    assert options.BUFFER_TIMEOUT.default == timedelta(milliseconds=100)
    assert options.SLOT_REQUEST_TIMEOUT.default == timedelta(minutes=5)
    assert options.NETWORK_MIN.default == 64 * MB
    assert options.NETWORK_MAX.default == 1024 * MB


def test_option_declaration_errors():
    with pytest.raises(TypeError, match="invalid default"):
        ConfigOption("x.y", int, "abc", "Bad default.")
    with pytest.raises(TypeError, match="choices need type str"):
        ConfigOption("x.y", int, 1, "Bad choices.", choices=("a",))
    with pytest.raises(TypeError, match="unsupported type"):
        ConfigOption("x.y", list, [], "Bad type.")


# -- registry ------------------------------------------------------------------------------------


def test_registry_holds_every_declared_option_in_order():
    declared = [v for v in vars(options).values() if isinstance(v, ConfigOption)]
    assert list(ALL_OPTIONS.values()) == declared
    assert ALL_OPTIONS["taskmanager.numberOfTaskSlots"] is options.NUM_TASK_SLOTS
    assert set(ALL_OPTIONS) >= {
        "parallelism.default", "pipeline.max-parallelism", "pipeline.name",
        "execution.runtime-mode", "execution.target", "execution.attached",
        "execution.buffer-timeout", "execution.batch-size", "python.executable",
        "jobmanager.rpc.address", "jobmanager.rpc.port", "jobmanager.bind-host",
        "jobmanager.memory.process.size", "resourcemanager.taskmanager-timeout",
        "slot.request.timeout", "heartbeat.interval", "heartbeat.timeout", "restart-strategy.type",
        "taskmanager.numberOfTaskSlots", "taskmanager.host", "taskmanager.bind-host",
        "taskmanager.rpc.port", "taskmanager.data.port", "taskmanager.resource-id",
        "taskmanager.memory.process.size", "taskmanager.memory.managed.fraction",
        "taskmanager.registration.timeout", "taskmanager.memory.network.fraction",
        "taskmanager.memory.network.min", "taskmanager.memory.network.max",
        "taskmanager.memory.segment-size", "taskmanager.network.memory.buffers-per-channel",
        "taskmanager.network.memory.floating-buffers-per-gate", "env.log.dir", "env.log.level",
        "env.pid.dir",
    }
    for option in ALL_OPTIONS.values():
        assert option.section, option.key
        assert option.description.endswith("."), option.key


def test_registry_rejects_duplicate_keys_and_env_clashes():
    a = ConfigOption("a.b", int, 1, "A.")
    with pytest.raises(TypeError, match="declared twice"):
        build_registry({"A": a, "B": ConfigOption("a.b", int, 2, "B.")})
    with pytest.raises(TypeError, match="one environment variable"):
        build_registry({"A": a, "B": ConfigOption("a-b", int, 2, "B.")})
    assert build_registry({"A": a, "ALIAS": a}) == {"a.b": a}


def test_env_var_names():
    assert options.NUM_TASK_SLOTS.env_var == "PYFLOW_CONF_TASKMANAGER_NUMBEROFTASKSLOTS"
    assert options.RESTART_STRATEGY.env_var == "PYFLOW_CONF_RESTART_STRATEGY_TYPE"


# -- Configuration -------------------------------------------------------------------------------


def test_get_returns_default_when_unset_and_parsed_value_when_set():
    conf = Configuration()
    assert conf.get(options.NUM_TASK_SLOTS) == 1
    assert not conf.contains(options.NUM_TASK_SLOTS)
    assert conf.set(options.NUM_TASK_SLOTS, "3") is conf
    assert conf.get(options.NUM_TASK_SLOTS) == 3
    assert conf.contains(options.NUM_TASK_SLOTS)
    assert conf.contains("taskmanager.numberOfTaskSlots")
    assert conf.get("taskmanager.numberOfTaskSlots") == 3


def test_constructor_validates_keys_and_values():
    conf = Configuration({"taskmanager.memory.process.size": "2g", options.ATTACHED: "no"})
    assert conf.get(options.TM_PROCESS_MEMORY) == 2 * 1024**3
    assert conf.get(options.ATTACHED) is False
    expected = "Invalid value 'x' for 'parallelism.default' \\(from code\\)"
    with pytest.raises(ConfigurationError, match=expected):
        Configuration({"parallelism.default": "x"})


def test_unknown_key_suggests_close_match_and_names_source():
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(dynamic=["taskmanager.numberOfTaskSlot=2"], env={}, conf_dir=None)
    assert str(info.value) == (
        "Unknown configuration option 'taskmanager.numberOfTaskSlot' (from -D). Did you mean "
        "'taskmanager.numberOfTaskSlots'? See conf/pyflow-conf.yaml for every option."
    )


def test_unknown_key_from_code_and_without_suggestion():
    with pytest.raises(ConfigurationError) as info:
        Configuration().set("no.such.thing.at.all", 1)
    message = str(info.value)
    assert message.startswith("Unknown configuration option 'no.such.thing.at.all' (from code).")
    assert "Did you mean" not in message
    assert "See conf/pyflow-conf.yaml for every option." in message


def test_wrong_case_key_suggests_the_right_spelling():
    with pytest.raises(ConfigurationError, match="Did you mean 'taskmanager.numberOfTaskSlots'"):
        Configuration({"taskmanager.numberoftaskslots": 2})


def test_to_dict_renders_strings_and_round_trips():
    conf = Configuration(
        {
            "taskmanager.numberOfTaskSlots": 4,
            "taskmanager.memory.process.size": "2048m",
            "execution.buffer-timeout": 5,
            "heartbeat.timeout": "2min",
            "execution.attached": "no",
            "execution.runtime-mode": "batch",
            "taskmanager.memory.managed.fraction": "0.3",
            "pipeline.name": "wordcount",
        }
    )
    assert conf.to_dict() == {
        "taskmanager.numberOfTaskSlots": "4",
        "taskmanager.memory.process.size": "2gb",
        "execution.buffer-timeout": "5 ms",
        "heartbeat.timeout": "2 min",
        "execution.attached": "false",
        "execution.runtime-mode": "BATCH",
        "taskmanager.memory.managed.fraction": "0.3",
        "pipeline.name": "wordcount",
    }
    assert Configuration(conf.to_dict()) == conf
    assert all(isinstance(v, str) for v in conf.to_dict().values())


def test_merged_is_new_and_other_wins():
    base = Configuration({"parallelism.default": 2, "pipeline.name": "a"})
    merged = base.merged(Configuration({"parallelism.default": 3}))
    assert merged.get(options.PARALLELISM) == 3
    assert merged.get(options.PIPELINE_NAME) == "a"
    assert base.get(options.PARALLELISM) == 2
    from_mapping = base.merged({"pipeline.name": "b"})
    assert from_mapping.get(options.PIPELINE_NAME) == "b"
    with pytest.raises(ConfigurationError, match="Unknown configuration option 'pipeline.nam'"):
        base.merged({"pipeline.nam": "b"})


def test_copy_is_independent_and_equality_is_on_explicit_values():
    conf = Configuration({"parallelism.default": 2})
    clone = conf.copy()
    assert clone == conf and clone is not conf
    clone.set(options.PARALLELISM, 5)
    assert conf.get(options.PARALLELISM) == 2
    assert clone != conf
    assert Configuration() != Configuration({"parallelism.default": 1})
    assert Configuration({"parallelism.default": "2"}) == Configuration({"parallelism.default": 2})
    assert repr(conf) == "Configuration({'parallelism.default': '2'})"


def test_parse_dynamic():
    parsed = Configuration.parse_dynamic(["a=1", "b = x=y", "a=2", "c="])
    assert parsed == {"a": "2", "b": " x=y", "c": ""}
    expected = "Dynamic property 'parallelism.default' is not of the form key=value"
    with pytest.raises(ConfigurationError, match=expected):
        Configuration.parse_dynamic(["parallelism.default"])
    with pytest.raises(ConfigurationError):
        Configuration.parse_dynamic(["=3"])


# -- loading -------------------------------------------------------------------------------------


def test_precedence_defaults_file_env_dynamic(tmp_path, monkeypatch):
    write_conf(
        tmp_path,
        "taskmanager.numberOfTaskSlots: 2\n"
        "parallelism.default: 2\n"
        "pipeline.name: from-file\n"
        "execution.batch-size: 100\n",
    )
    monkeypatch.setenv("PYFLOW_CONF_TASKMANAGER_NUMBEROFTASKSLOTS", "3")
    monkeypatch.setenv("PYFLOW_CONF_PIPELINE_NAME", "from-env")
    conf = Configuration.load(tmp_path, dynamic=["pipeline.name=from-dynamic"])
    assert conf.get(options.HEARTBEAT_INTERVAL) == timedelta(seconds=10)  # default
    assert conf.get(options.PARALLELISM) == 2  # file
    assert conf.get(options.BATCH_SIZE) == 100  # file
    assert conf.get(options.NUM_TASK_SLOTS) == 3  # env over file
    assert conf.get(options.PIPELINE_NAME) == "from-dynamic"  # -D over env
    assert not conf.contains(options.HEARTBEAT_INTERVAL)


def test_explicit_env_mapping_replaces_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("PYFLOW_CONF_PARALLELISM_DEFAULT", "9")
    conf = Configuration.load(tmp_path, env={"PYFLOW_CONF_PARALLELISM_DEFAULT": "4"})
    assert conf.get(options.PARALLELISM) == 4
    assert Configuration.load(tmp_path, env={}).get(options.PARALLELISM) == 1


def test_dynamic_accepts_a_mapping(tmp_path):
    conf = Configuration.load(tmp_path, dynamic={"execution.runtime-mode": "batch"}, env={})
    assert conf.get(options.RUNTIME_MODE) == "BATCH"


def test_conf_dir_from_environment(tmp_path, monkeypatch):
    write_conf(tmp_path, "parallelism.default: 7\n")
    monkeypatch.setenv("PYFLOW_CONF_DIR", str(tmp_path))
    assert Configuration.load().get(options.PARALLELISM) == 7  # PYFLOW_CONF_DIR is not an option


def test_conf_dir_default_is_repo_conf(monkeypatch):
    assert default_conf_dir() == REPO_CONF.parent
    conf = Configuration.load(env={})
    for option in ALL_OPTIONS.values():
        assert conf.get(option) == option.default


def test_missing_conf_dir_is_an_error_but_missing_file_is_not(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        Configuration.load(tmp_path / "nope", env={})
    with pytest.raises(ConfigurationError, match="PYFLOW_CONF_DIR="):
        Configuration.load(env={"PYFLOW_CONF_DIR": str(tmp_path / "nope")})
    assert Configuration.load(tmp_path, env={}) == Configuration()


def test_conf_dir_may_name_the_file(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("parallelism.default: 5\n")
    assert Configuration.load(path, env={}).get(options.PARALLELISM) == 5


def test_nested_yaml_is_flattened(tmp_path):
    write_conf(
        tmp_path,
        "taskmanager:\n"
        "  numberOfTaskSlots: 4\n"
        "  memory:\n"
        "    process.size: 2g\n"
        "    managed:\n"
        "      fraction: 0.2\n"
        "execution.runtime-mode: batch\n",
    )
    conf = Configuration.load(tmp_path, env={})
    assert conf.get(options.NUM_TASK_SLOTS) == 4
    assert conf.get(options.TM_PROCESS_MEMORY) == 2 * 1024**3
    assert conf.get(options.MANAGED_MEMORY_FRACTION) == 0.2
    assert conf.get(options.RUNTIME_MODE) == "BATCH"


def test_key_set_twice_in_file_is_an_error(tmp_path):
    write_conf(tmp_path, "taskmanager.numberOfTaskSlots: 2\ntaskmanager:\n  numberOfTaskSlots: 3\n")
    with pytest.raises(ConfigurationError, match=r"set twice .* \(lines 1 and 3\)"):
        Configuration.load(tmp_path, env={})


def test_empty_file_gives_defaults(tmp_path):
    write_conf(tmp_path, "# nothing but a comment\n")
    assert Configuration.load(tmp_path, env={}) == Configuration()


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    text = "parallelism.default: 1\ntaskmanager.numberOfTaskSlots: [2\nfoo: 1\n"
    path = write_conf(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(tmp_path, env={})
    message = str(info.value)
    assert str(path) in message
    assert " line " in message
    assert message.startswith(f"Cannot parse configuration file {path} line ")
    assert "\n" not in message


def test_yaml_top_level_must_be_a_mapping(tmp_path):
    path = write_conf(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigurationError, match=f"{path} line 1 must be a mapping"):
        Configuration.load(tmp_path, env={})


def test_unknown_key_in_file_names_file_and_line(tmp_path):
    path = write_conf(tmp_path, "parallelism.default: 1\ntaskmanager.numberOfTaskSlot: 2\n")
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(tmp_path, env={})
    assert str(info.value) == (
        f"Unknown configuration option 'taskmanager.numberOfTaskSlot' (from {path} line 2). "
        "Did you mean 'taskmanager.numberOfTaskSlots'? See conf/pyflow-conf.yaml for every option."
    )


def test_bad_value_in_file_names_file_and_line(tmp_path):
    path = write_conf(tmp_path, "taskmanager.numberOfTaskSlots: abc\n")
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(tmp_path, env={})
    assert str(info.value) == (
        f"Invalid value 'abc' for 'taskmanager.numberOfTaskSlots' (from {path} line 1): "
        "expected an integer >= 1, e.g. 'taskmanager.numberOfTaskSlots: 2'."
    )


def test_bad_value_from_env_and_dynamic_name_their_source(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(tmp_path, env={"PYFLOW_CONF_EXECUTION_RUNTIME_MODE": "fast"})
    assert "(from environment variable PYFLOW_CONF_EXECUTION_RUNTIME_MODE)" in str(info.value)
    assert "e.g. 'PYFLOW_CONF_EXECUTION_RUNTIME_MODE=BATCH'" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(tmp_path, env={}, dynamic=["heartbeat.interval=soon"])
    assert "(from -D)" in str(info.value)
    assert "e.g. '-D heartbeat.interval=10 s'" in str(info.value)


def test_unknown_environment_variable_is_an_error_with_suggestion(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        Configuration.load(tmp_path, env={"PYFLOW_CONF_TASKMANAGER_NUMBEROFTASKSLOT": "2"})
    message = str(info.value)
    assert "environment variable PYFLOW_CONF_TASKMANAGER_NUMBEROFTASKSLOT" in message
    assert (
        "Did you mean PYFLOW_CONF_TASKMANAGER_NUMBEROFTASKSLOTS ('taskmanager.numberOfTaskSlots')?"
        in message
    )
    # other variables are left alone
    unrelated = {"PYFLOW_LOG_DIR": "/x", "HOME": "/root"}
    assert Configuration.load(tmp_path, env=unrelated) == Configuration()


# -- views ---------------------------------------------------------------------------------------


def test_task_manager_view_defaults(tmp_path):
    view = TaskManagerConfiguration.from_config(Configuration({"env.log.dir": str(tmp_path)}))
    assert view.num_slots == 1
    assert view.host == "127.0.0.1" and view.bind_host == "127.0.0.1"
    assert view.rpc_port == 0 and view.data_port == 0
    assert view.resource_id == ""
    assert view.process_memory == 1728 * MB
    assert view.managed_memory == int(1728 * MB * 0.4)
    assert view.network_memory == int(1728 * MB * 0.1)  # 172.8mb lies between 64mb and 1gb
    assert view.heartbeat_interval_s == 10.0
    assert view.heartbeat_timeout_s == 50.0
    assert view.registration_timeout_s == 300.0
    assert view.log_dir == str(tmp_path)
    assert view.log_level == "INFO"
    with pytest.raises(AttributeError):
        view.num_slots = 2  # type: ignore[misc]


def test_network_memory_is_clamped():
    small = Configuration({"taskmanager.memory.process.size": "256m"})
    assert TaskManagerConfiguration.from_config(small).network_memory == 64 * MB  # 25.6mb -> min
    large = Configuration({"taskmanager.memory.process.size": "32g"})
    assert TaskManagerConfiguration.from_config(large).network_memory == 1024 * MB  # 3.2gb -> max
    assert NetworkConfiguration.from_config(large).network_memory == 1024 * MB
    bounds = Configuration(
        {"taskmanager.memory.network.min": "1g", "taskmanager.memory.network.max": "512m"}
    )
    with pytest.raises(ConfigurationError, match="is larger than 'taskmanager.memory.network.max'"):
        TaskManagerConfiguration.from_config(bounds)


def test_memory_over_budget_is_an_error():
    conf = Configuration(
        {"taskmanager.memory.process.size": "100m", "taskmanager.memory.managed.fraction": 0.9}
    )
    with pytest.raises(ConfigurationError, match="exceed 'taskmanager.memory.process.size'"):
        TaskManagerConfiguration.from_config(conf)


def test_heartbeat_timeout_shorter_than_interval_is_an_error():
    conf = Configuration({"heartbeat.interval": "10 s", "heartbeat.timeout": "5 s"})
    with pytest.raises(ConfigurationError, match="'heartbeat.timeout' \\(5 s\\) is shorter"):
        JobManagerConfiguration.from_config(conf)


def test_network_view():
    conf = Configuration(
        {
            "taskmanager.data.port": 7000,
            "taskmanager.host": "tm-1",
            "taskmanager.bind-host": "0.0.0.0",
            "taskmanager.memory.segment-size": "64kb",
            "execution.buffer-timeout": "1 s",
            "execution.batch-size": 1024,
            "taskmanager.network.memory.floating-buffers-per-gate": 0,
        }
    )
    view = NetworkConfiguration.from_config(conf)
    assert view == NetworkConfiguration(
        bind_host="0.0.0.0",
        host="tm-1",
        port=7000,
        segment_size=64 * 1024,
        buffers_per_channel=2,
        floating_buffers_per_gate=0,
        buffer_timeout_ms=1000.0,
        batch_size=1024,
        network_memory=int(1728 * MB * 0.1),
    )
    assert NetworkConfiguration.from_config(Configuration()).buffer_timeout_ms == 100.0


def test_job_manager_view(tmp_path):
    conf = Configuration(
        {
            "jobmanager.rpc.address": "jm",
            "jobmanager.rpc.port": 7123,
            "jobmanager.bind-host": "0.0.0.0",
            "slot.request.timeout": "90 s",
            "env.log.level": "debug",
            "env.log.dir": str(tmp_path),
        }
    )
    view = JobManagerConfiguration.from_config(conf)
    assert (view.rpc_address, view.rpc_port, view.bind_host) == ("jm", 7123, "0.0.0.0")
    assert view.heartbeat_interval_s == 10.0 and view.heartbeat_timeout_s == 50.0
    assert view.taskmanager_timeout_s == 30.0
    assert view.slot_request_timeout_s == 90.0
    assert view.log_dir == str(tmp_path) and view.log_level == "DEBUG"


def test_resolve_log_dir(tmp_path, monkeypatch):
    import tempfile

    assert resolve_log_dir(Configuration(), env={}) == Path(tempfile.gettempdir()) / "pyflow-logs"
    from_env = resolve_log_dir(Configuration(), env={"PYFLOW_LOG_DIR": "/var/log/pf"})
    assert from_env == Path("/var/log/pf")
    monkeypatch.setenv("PYFLOW_LOG_DIR", str(tmp_path / "from-env"))
    assert resolve_log_dir(Configuration()) == tmp_path / "from-env"
    explicit = Configuration({"env.log.dir": str(tmp_path / "explicit")})
    assert resolve_log_dir(explicit) == tmp_path / "explicit"
    assert not (tmp_path / "explicit").exists() and not (tmp_path / "from-env").exists()


# -- the generated yaml file ---------------------------------------------------------------------


def test_conf_file_is_generated_from_declarations():
    assert REPO_CONF.read_text(encoding="utf-8") == render_yaml(), (
        "conf/pyflow-conf.yaml is stale; regenerate it with "
        "'python -m pyflow.config > conf/pyflow-conf.yaml'"
    )


def test_conf_file_loads_back_to_all_defaults():
    conf = Configuration.load(REPO_CONF.parent, env={})
    assert set(conf) == set(ALL_OPTIONS)
    for option in ALL_OPTIONS.values():
        assert conf.get(option) == option.default, option.key


def test_rendered_yaml_lists_every_option_with_its_description():
    text = render_yaml()
    data = yaml.safe_load(text)
    assert list(data) == list(ALL_OPTIONS)
    assert data["pipeline.name"] == ""
    assert data["taskmanager.memory.process.size"] == "1728mb"
    assert data["execution.buffer-timeout"] == "100 ms"
    assert "# TaskManager\n" in text
    assert "python -m pyflow.config > conf/pyflow-conf.yaml" in text
    assert "tests/unit/test_config.py" in text
    assert all(len(line) <= 96 for line in text.splitlines())
    assert "# Number of parallel task slots a TaskManager offers" in text


def test_render_yaml_quotes_strings_that_yaml_would_retype():
    option = ConfigOption("x.y", str, "true", "A string that looks like a bool.", section="X")
    text = render_yaml({"x.y": option})
    assert 'x.y: "true"' in text
    assert yaml.safe_load(text) == {"x.y": "true"}


def test_main_prints_the_yaml(capsys):
    import runpy

    runpy.run_module("pyflow.config", run_name="__main__")
    assert capsys.readouterr().out == render_yaml()
