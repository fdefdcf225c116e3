"""Deployment targets, each a ResourceDriver plus the launcher around it: ``local`` (the embedded
cluster, TaskManager processes on this machine), ``standalone`` (TaskManagers started by
scripts/), and ``yarn`` (TaskManagers as YARN containers, through skein)."""
