#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests.
#
#   scripts/postgres.sh install                  install PostgreSQL with apt when it is missing
#   scripts/postgres.sh start DIR PORT [OWNER]   initdb into DIR/data (unless done) and start on
#                                                127.0.0.1:PORT
#   scripts/postgres.sh stop DIR                 stop the server of DIR (immediate shutdown)
#
# The server trusts every local connection (user "integr8s", no password), listens on 127.0.0.1
# only, keeps its socket in DIR/sock and skips fsync (the data is thrown away; commits still reach
# the kernel, so starting it again after a stop keeps them). With OWNER (a pid), a watchdog stops
# the server and removes DIR as soon as that process is gone, so a test process that dies without
# cleaning up leaves nothing running. PostgreSQL refuses to run as root: as root, the server runs
# as the "postgres" system user (created when missing). start prints the URL of the "postgres"
# database.
set -euo pipefail

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

# The bin directory of the newest installed PostgreSQL, or nothing.
find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return
    fi
  done
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
  fi
}

install() {
  if [ -n "$(find_bin)" ]; then
    return
  fi
  "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" postgresql
  [ -n "$(find_bin)" ] || die "postgresql installed but initdb/pg_ctl not found"
}

# Runs a command as the server's user: ourselves, or "postgres" when we are root.
as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ensure_server_user() {
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  fi
}

start() {
  local dir=$1 port=$2 owner=${3:-}
  local bin
  bin=$(find_bin)
  [ -n "$bin" ] || die "PostgreSQL is not installed: run scripts/postgres.sh install"
  case "$dir" in /?*) ;; *) die "DIR must be an absolute path, got '$dir'" ;; esac
  [ -d "$dir" ] || die "no directory $dir"
  ensure_server_user
  mkdir -p "$dir/sock"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$dir"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ] &&
    ! as_server_user "$bin/initdb" -D "$dir/data" -U integr8s -A trust -E UTF8 --locale=C \
      --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed"
  fi
  if ! as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off \
        -c full_page_writes=off -c max_connections=300" \
    start >/dev/null; then
    cat "$dir/server.log" >&2 || true
    die "the server did not start on port $port"
  fi
  if [ -n "$owner" ]; then
    # Detached (own session, no inherited output) so the caller does not wait for it.
    setsid bash -c '
      owner=$1 bin=$2 dir=$3
      while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
      if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop
      else
        "$bin/pg_ctl" -D "$dir/data" -m immediate stop
      fi
      rm -rf "$dir"' watchdog "$owner" "$bin" "$dir" </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watchdog.pid"
  fi
  echo "postgres://integr8s@127.0.0.1:$port/postgres"
}

stop() {
  local dir=$1
  local bin
  bin=$(find_bin)
  [ -n "$bin" ] || die "PostgreSQL is not installed"
  if [ -f "$dir/watchdog.pid" ]; then
    kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
    rm -f "$dir/watchdog.pid"
  fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
  fi
}

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 3 ] || die "usage: postgres.sh start DIR PORT [OWNER_PID]"; start "$2" "$3" "${4:-}" ;;
  stop) [ $# -eq 2 ] || die "usage: postgres.sh stop DIR"; stop "$2" ;;
  *) die "usage: postgres.sh install | start DIR PORT [OWNER_PID] | stop DIR" ;;
esac
