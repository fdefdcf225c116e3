"""REST API and Web UI of the Dispatcher (not in this release): Flink's paths and JSON shapes, the
OpenAPI document and the web UI will live here."""
