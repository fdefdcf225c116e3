"""The TaskManager process: TaskExecutor endpoint, slot table, tasks (a chain in a thread)."""
