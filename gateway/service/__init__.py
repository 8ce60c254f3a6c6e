"""Running the gateway as a service: everything between the command line and the application.

Owns: reading a whole configuration file and where its state goes (:mod:`.config`,
:mod:`.state`), one serving process — its listeners, the admin listener, SIGHUP reloads,
the SIGTERM drain, its start and stop log lines (:mod:`.serve`) —, the supervisor of several
worker processes sharing the ports (:mod:`.workers`), the checks ``check-config`` makes
beyond the file's own (:mod:`.checks`) and the build's version and commit (:mod:`.version`).

May import: anything in :mod:`gateway` (it sits above :mod:`gateway.app`), :mod:`routing`.
Nothing below it imports it, but :mod:`gateway.app` its :mod:`.version`.
"""
