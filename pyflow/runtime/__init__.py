"""The runtime: JobManager and TaskManager processes, their RPC (control plane), the Arrow IPC
network (data plane), and the stream operators that run inside tasks. Nothing here imports
``pyflow.api``."""
