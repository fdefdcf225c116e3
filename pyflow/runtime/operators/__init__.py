"""Stream operators that run inside tasks: sources, user-function operators, keyed operators and
vectorized aggregations, sinks. ``base`` is the contract between a task and its operators."""
