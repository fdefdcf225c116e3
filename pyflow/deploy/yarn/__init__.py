"""pyflow on Hadoop YARN, through skein (docs/yarn.md).

One module per concern; only :mod:`skein_client` imports skein:

==========================  ========================================================================
``skein_client``            skein's Client and ApplicationClient behind a small surface, errors translated
``hadoop_conf``             the client's $HADOOP_CONF_DIR: where the ResourceManager is, the default FS
``job_files``               the job file and the local modules it imports; imports checked early
``shipping``                what containers need, cached on the cluster by content hash
``spec``                    the skein application spec, from yarn/pyflow-application.yaml
``cluster_descriptor``      deploying per-job, application and session clusters; finding them again
``driver``                  the YARN ResourceDriver: TaskManagers as containers of the application
``application_master``      the ApplicationMaster entry point: runs the JobManager
``taskmanager``             the TaskManager container entry point
``executors``               the execution.target executors yarn-per-job, yarn-session, yarn-application
``session``                 the yarn-session properties file
==========================  ========================================================================
"""
