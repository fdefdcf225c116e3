"""High availability (not in this release): leader election and retrieval and the job graph and
checkpoint stores, with implementations none and zookeeper (kazoo), will live here."""
