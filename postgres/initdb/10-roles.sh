#!/usr/bin/env bash
# Run by the postgres image on its first start only (an empty data folder), as the
# superuser, on the database POSTGRES_DB: the job's role owns that database and creates its
# tables there; the dashboard's role may connect and read every table the job creates,
# nothing more. Role names come from the compose file, passwords from postgres/*.env.
set -euo pipefail

for name in JOB_ROLE DASHBOARD_ROLE CONSUMER_DB_PASSWORD DASHBOARD_DB_PASSWORD; do
  if [[ -z "${!name:-}" ]]; then
    echo "error: $name is not set (the passwords are in postgres/*.env, which make up creates)" >&2
    exit 1
  fi
done

# psql reads the names and passwords from the environment itself (\getenv), so no password
# appears on a command line.
psql --no-psqlrc --set=ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" <<'SQL'
\getenv db POSTGRES_DB
\getenv job JOB_ROLE
\getenv job_password CONSUMER_DB_PASSWORD
\getenv reader DASHBOARD_ROLE
\getenv reader_password DASHBOARD_DB_PASSWORD

CREATE ROLE :"job" LOGIN PASSWORD :'job_password';
-- The owner of the database may create tables in its public schema (PostgreSQL 15+).
ALTER DATABASE :"db" OWNER TO :"job";
-- Nobody else may create anything: not in the schema, not temporary tables.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE TEMPORARY ON DATABASE :"db" FROM PUBLIC;

CREATE ROLE :"reader" LOGIN PASSWORD :'reader_password';
-- Read-only twice over: every transaction of the role is read-only by default, and it holds
-- no privilege to write even in a transaction it makes writable.
ALTER ROLE :"reader" SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"db" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
-- The job creates its tables after this script: grant reading them in advance.
ALTER DEFAULT PRIVILEGES FOR ROLE :"job" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
echo "Created the roles $JOB_ROLE (owner of $POSTGRES_DB) and $DASHBOARD_ROLE (read-only)."
