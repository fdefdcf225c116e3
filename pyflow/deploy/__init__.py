"""Deployment targets, each a ResourceDriver plus the launcher around it: ``local`` (the embedded
cluster, TaskManager processes on this machine) in this release; standalone and yarn to come."""
