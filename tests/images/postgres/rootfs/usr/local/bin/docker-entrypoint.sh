#!/usr/bin/env bash
# Stand-in for the official postgres image's docker-entrypoint.sh, after reading it
# (docker-library/postgres): only the part the compose file uses.
#
# - Started as root: gives PGDATA to the postgres user, then runs again as that user.
# - An empty PGDATA: initdb with the superuser POSTGRES_USER (default postgres) and its
#   POSTGRES_PASSWORD, "host all all all scram-sha-256" appended to pg_hba.conf (initdb's own
#   lines trust local and loopback connections, as in the official image), listen on all
#   addresses; then a temporary server on the Unix socket only creates POSTGRES_DB and runs
#   /docker-entrypoint-initdb.d/: *.sh executed if executable, else sourced; *.sql with psql.
# - Every variable may come from a file instead: POSTGRES_PASSWORD_FILE and so on.
set -Eeuo pipefail

file_env() { # file_env VAR [DEFAULT]: VAR from itself, from VAR_FILE, or the default
  local var="$1" file_var="${1}_FILE" value="${2:-}"
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    echo "error: both $var and $file_var are set (but are exclusive)" >&2
    exit 1
  fi
  if [[ -n "${!var:-}" ]]; then
    value="${!var}"
  elif [[ -n "${!file_var:-}" ]]; then
    value="$(<"${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

run_init_scripts() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        if [[ -x "$f" ]]; then
          echo "$0: running $f"
          "$f"
        else
          echo "$0: sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql)
        echo "$0: running $f"
        psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$f"
        ;;
      *) [[ -e "$f" ]] && echo "$0: ignoring $f" ;;
    esac
  done
}

if [[ "${1:-}" == postgres ]]; then
  if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    # The official image uses gosu; setpriv (util-linux) changes user the same way, no PAM.
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    if [[ -z "$POSTGRES_PASSWORD" ]]; then
      echo "Error: Database is uninitialized and superuser password is not specified." >&2
      echo "       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser." >&2
      exit 1
    fi
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") >/dev/null
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [[ "$POSTGRES_DB" != postgres ]]; then
      psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    run_init_scripts
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "PostgreSQL init process complete; ready for start up."
  fi
fi

exec "$@"
