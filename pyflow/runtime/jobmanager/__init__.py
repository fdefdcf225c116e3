"""The JobManager: Dispatcher, ResourceManager (slot manager + ResourceDriver), one JobMaster per job."""
