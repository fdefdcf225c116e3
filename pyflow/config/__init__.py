"""Typed configuration with Apache Flink's keys: declarations, loading, frozen views.

- :mod:`pyflow.config.options` declares every option once (``options.NUM_TASK_SLOTS``, ...)
  and collects them in :data:`ALL_OPTIONS`.
- :class:`Configuration` loads ``conf/pyflow-conf.yaml`` < ``PYFLOW_CONF_*`` environment
  variables < ``-D key=value`` and validates every key and value as it enters.
- Components take a frozen view: :class:`TaskManagerConfiguration`,
  :class:`NetworkConfiguration`, :class:`JobManagerConfiguration`.
- :func:`render_yaml` generates ``conf/pyflow-conf.yaml`` (``python -m pyflow.config``).

>>> from pyflow.config import Configuration, options
>>> conf = Configuration.load(dynamic=["taskmanager.numberOfTaskSlots=2"], env={})
>>> conf.get(options.NUM_TASK_SLOTS)
2
"""

from pyflow.config import options
from pyflow.config.configuration import (
    Configuration,
    JobManagerConfiguration,
    NetworkConfiguration,
    TaskManagerConfiguration,
    render_yaml,
    resolve_log_dir,
)
from pyflow.config.options import ALL_OPTIONS, ConfigOption, MemorySize

__all__ = [
    "ALL_OPTIONS",
    "ConfigOption",
    "Configuration",
    "JobManagerConfiguration",
    "MemorySize",
    "NetworkConfiguration",
    "TaskManagerConfiguration",
    "options",
    "render_yaml",
    "resolve_log_dir",
]
