"""YARN deployment through Skein (not in this release): the application spec, the YARN
ResourceDriver and the ApplicationMaster entry point will live here."""
