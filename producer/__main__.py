"""Entry point for ``python -m producer``."""

from producer.cli import main

raise SystemExit(main())
