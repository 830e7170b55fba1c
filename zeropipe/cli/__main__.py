"""``python -m zeropipe.cli``."""

from zeropipe.cli.main import main

raise SystemExit(main())
