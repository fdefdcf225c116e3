"""Checkpoints (not in this release): the coordinator, barrier alignment, storage on fsspec URLs
(file://, hdfs://, s3://) and savepoints will live here."""
