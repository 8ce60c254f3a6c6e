"""``python -m gateway`` is the ``mado-gateway`` command."""

from gateway.cli import main

raise SystemExit(main())
