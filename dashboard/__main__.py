"""``python -m dashboard``: serve the live dashboard of the job's database.

Every flag has an environment variable (for the container); a flag beats its variable.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from contract.flags import Flag, FlagError, add_flags, positive, usage_error
from contract.kafka import DEFAULT_BOOTSTRAP_SERVERS
from contract.tables import DEFAULT_DB_NAME, url_with_password

# What `make demo` writes; `make job` writes there only with --output-dir output/demo.
DEFAULT_DB_URL = f"sqlite:///output/demo/{DEFAULT_DB_NAME}"
# The password, when --db-url names only the user (the Docker stack: postgres/dashboard.env).
DB_PASSWORD_ENV = "DASHBOARD_DB_PASSWORD"


DASHBOARD_FLAGS = (
    Flag("--db-url", "DASHBOARD_DB_URL",
         "SQLAlchemy URL of the job's database (default: %(default)s)", DEFAULT_DB_URL,
         metavar="URL"),
    Flag("--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS",
         "Kafka to measure the lag against, plaintext (default: %(default)s; off for none)",
         DEFAULT_BOOTSTRAP_SERVERS, metavar="HOST:PORT"),
    Flag("--host", "DASHBOARD_HOST",
         "address to listen on (default: %(default)s, this machine only)", "127.0.0.1",
         metavar="HOST"),
    Flag("--port", "DASHBOARD_PORT", "port (default: %(default)s)", 8050, positive(int),
         "PORT"),
    Flag("--refresh", "DASHBOARD_REFRESH_SECONDS",
         "how often the page re-reads the database (default: %(default)g)", 5.0,
         positive(float), "SECONDS"),
)  # fmt: skip

PROG = "python -m dashboard"


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """:data:`DASHBOARD_FLAGS` with their defaults from ``env``; raises
    :class:`~contract.flags.FlagError` for a variable it cannot read."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the live dashboard of the job's database.",
        epilog=f"{DB_PASSWORD_ENV} holds the database password when --db-url has none.",
    )
    add_flags(parser, DASHBOARD_FLAGS, env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser(os.environ)
    except FlagError as exc:
        usage_error(PROG, exc)
    args = parser.parse_args(argv)
    from dashboard.app import create_app
    from dashboard.data import Database
    from dashboard.lag import LagProbe

    db_url = args.db_url
    if password := os.environ.get(DB_PASSWORD_ENV):
        try:
            db_url = url_with_password(db_url, password)
        except ValueError as exc:
            print(f"error: {DB_PASSWORD_ENV} is set, but {exc}", file=sys.stderr)
            return 2
    try:
        database = Database(db_url)
    except Exception as exc:  # a malformed URL or a driver that is not installed
        print(f"error: --db-url {args.db_url!r} cannot be used: {exc}", file=sys.stderr)
        return 2
    servers = args.bootstrap_servers
    probe = None if servers.strip().lower() in ("off", "none", "") else LagProbe(servers)
    app = create_app(database, args.refresh, probe)
    # Werkzeug logs every request (a refresh every few seconds); keep errors only.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(
        f"Dashboard of {database.shown_url} on http://{args.host}:{args.port}/ "
        f"(refresh every {args.refresh:g} s; Ctrl-C stops)",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
