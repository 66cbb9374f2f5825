#!/usr/bin/env bash
# ensure-postgres.sh — make sure a PostgreSQL server is reachable for Invicta.
#
# Used by the Makefile (`make run`, `make test`). Works on a developer machine
# that already runs PostgreSQL as well as on a fresh Debian box.
#
# Usage:
#   scripts/ensure-postgres.sh          # (or: ... start) print an admin URL
#   scripts/ensure-postgres.sh stop     # stop the private cluster, if running
#   scripts/ensure-postgres.sh purge    # stop it and delete its data
#   scripts/ensure-postgres.sh -h       # this help
#
# Contract (start):
#   * stdout receives exactly ONE line: a PostgreSQL *admin* URL (database
#     `postgres`) of a server that answers, e.g.
#         postgres://postgres@127.0.0.1:5432/postgres
#   * every progress message goes to stderr;
#   * on failure: exit non-zero with one clear `error:` line on stderr.
#
# Strategy:
#   1. If DATABASE_URL is set and its server answers, print the same URL with
#      the database replaced by `postgres` (user, password, host, port and
#      query parameters are kept). Then (unless ENSURE_PG_SKIP_DEFAULT=1) try
#      the conventional local default postgres://postgres@127.0.0.1:5432/postgres.
#   2. Otherwise use a private cluster in $REPO/.data/pg (as root, when the
#      `postgres` user cannot enter the clone, a link to a directory of its own
#      under /var/lib/postgresql/invicta-clusters):
#        .data/pg/data   data directory (initdb --auth=trust, user postgres)
#        .data/pg/PORT   TCP port the cluster was started on
#        .data/pg/log    server log
#        .data/pg/.lock  flock(1) lock serialising concurrent invocations
#      A running cluster is reused; otherwise the server binaries are located
#      (PATH, then the highest /usr/lib/postgresql/*/bin), installed with apt
#      when running as root and missing, the cluster is initialised if needed
#      and started on a free port (from 55432 upwards) on 127.0.0.1 only.
#      When running as root, initdb/pg_ctl run as the `postgres` system user
#      (created if missing), because PostgreSQL refuses to run as root.
#
# Environment knobs:
#   DATABASE_URL             preferred server (see step 1)
#   ENSURE_PG_SKIP_DEFAULT=1 skip probing 127.0.0.1:5432 (mainly for testing)
#   ENSURE_PG_PORT_START     first port probed for the private cluster (55432)
#   PG_BINDIR                directory holding pg_ctl/initdb (overrides search)
#   ENSURE_PG_OUTSIDE_ROOT   where clusters of unreachable clones live (root only)
#
# Idempotent: running it again while the private cluster is up just reuses it.

set -Eeuo pipefail

PROG=ensure-postgres

# Keep the real stdout on fd 3 for the single result line; everything else
# (our messages, and the chatter of initdb/pg_ctl/apt-get) goes to stderr.
exec 3>&1 1>&2

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  trap - ERR
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}
# Any unexpected failing command (set -e) still ends with one clear message.
trap 'die "unexpected failure (line $LINENO): $BASH_COMMAND"' ERR

# Print the result line on the real stdout.
emit_url() { printf '%s\n' "$1" >&3; }

# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$SCRIPT_DIR/.." && pwd -P)
# $REPO/.data/pg, or (as root, when the `postgres` user cannot reach the clone) a symbolic link
# there to a directory under OUTSIDE_ROOT that the postgres user owns; see place_cluster_root.
REPO_PG=$REPO/.data/pg
OUTSIDE_ROOT=${ENSURE_PG_OUTSIDE_ROOT:-/var/lib/postgresql/invicta-clusters}
set_pg_root() {
  PG_ROOT=$1
  DATA_DIR=$PG_ROOT/data
  PORT_FILE=$PG_ROOT/PORT
  LOG_FILE=$PG_ROOT/log
  LOCK_FILE=$PG_ROOT/.lock
}
if [[ -L $REPO_PG ]]; then
  set_pg_root "$(readlink -f "$REPO_PG")"
else
  set_pg_root "$REPO_PG"
fi

DEFAULT_URL=postgres://postgres@127.0.0.1:5432/postgres
PORT_START=${ENSURE_PG_PORT_START:-55432}
PORT_TRIES=100   # how many consecutive ports we are willing to probe
CONNECT_TIMEOUT=5

IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

# Binaries, filled in lazily.
PSQL=""
PG_ISREADY=""
PG_CTL=""
INITDB=""

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

# Highest-versioned /usr/lib/postgresql/<ver>/bin/<name> (Debian layout).
debian_pg_bin() {
  local name=$1 candidate best=""
  while IFS= read -r candidate; do
    [[ -x $candidate ]] && best=$candidate
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin/"$name" | sort -V)
  [[ -n $best ]] && printf '%s\n' "$best"
}

# A client tool (psql, pg_isready): PATH first, then the Debian layout.
find_client_tool() {
  command -v "$1" 2>/dev/null || debian_pg_bin "$1" || true
}

locate_client_tools() {
  PSQL=$(find_client_tool psql)
  PG_ISREADY=$(find_client_tool pg_isready)
}

# Locate pg_ctl + initdb (both from the same place). Returns 1 if not found.
locate_server_bins() {
  local dir ver
  if [[ -n ${PG_BINDIR:-} ]]; then
    [[ -x $PG_BINDIR/pg_ctl && -x $PG_BINDIR/initdb ]] ||
      die "PG_BINDIR=$PG_BINDIR does not contain pg_ctl and initdb"
    PG_CTL=$PG_BINDIR/pg_ctl INITDB=$PG_BINDIR/initdb
    return 0
  fi
  # An existing cluster must be driven by binaries of its own major version.
  if [[ -f $DATA_DIR/PG_VERSION ]]; then
    ver=$(<"$DATA_DIR/PG_VERSION")
    dir=/usr/lib/postgresql/$ver/bin
    if [[ -x $dir/pg_ctl && -x $dir/initdb ]]; then
      PG_CTL=$dir/pg_ctl INITDB=$dir/initdb
      return 0
    fi
  fi
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    PG_CTL=$(command -v pg_ctl) INITDB=$(command -v initdb)
    return 0
  fi
  PG_CTL=$(debian_pg_bin pg_ctl || true)
  if [[ -n $PG_CTL ]]; then
    dir=$(dirname "$PG_CTL")
    if [[ -x $dir/initdb ]]; then
      INITDB=$dir/initdb
      return 0
    fi
  fi
  PG_CTL="" INITDB=""
  return 1
}

# Install PostgreSQL with apt (root only). Dies on failure.
apt_install_postgres() {
  command -v apt-get >/dev/null 2>&1 ||
    die "PostgreSQL is not installed and apt-get is unavailable; install the PostgreSQL server (pg_ctl, initdb) and retry"
  log "installing PostgreSQL with apt-get (this may take a while)..."
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }; then
    die "apt-get install postgresql failed"
  fi
}

# Make sure the server binaries are present, installing them if we can.
need_server_bins() {
  locate_server_bins && return 0
  if ((IS_ROOT)); then
    apt_install_postgres
    locate_server_bins ||
      die "PostgreSQL was installed but pg_ctl/initdb were not found (looked in PATH and /usr/lib/postgresql/*/bin)"
    locate_client_tools
  else
    die "PostgreSQL server binaries (pg_ctl, initdb) not found in PATH or /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: sudo apt-get install postgresql), or set DATABASE_URL to a reachable server"
  fi
}

# OS user that owns / runs the private cluster (only meaningful as root).
PG_OS_USER=postgres
pick_os_user() {
  local owner
  if [[ -d $DATA_DIR ]]; then
    owner=$(stat -c %U "$DATA_DIR" 2>/dev/null || echo root)
    # Keep using whoever created the cluster (unless root, which can't run it).
    [[ $owner != root && $owner != UNKNOWN ]] && PG_OS_USER=$owner
  fi
  return 0
}

ensure_os_user() {
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating system user '$PG_OS_USER'"
  useradd --system --user-group --home-dir /var/lib/postgresql \
    --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER" ||
    die "could not create system user '$PG_OS_USER'"
}

# Close every file descriptor above 2 in the current (sub)shell. The
# long-lived postmaster started by pg_ctl must not inherit any of them: fd 3
# is our real stdout (a pipe when called as `$(ensure-postgres.sh)`, which
# would then hang until the server exits), fd 9 is the lock, and whatever the
# caller leaked (make's jobserver pipes, ...) should not be kept open forever.
close_extra_fds() {
  local fd
  if [[ -d /proc/$BASHPID/fd ]]; then
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
        exec {fd}>&- 2>/dev/null || true
      fi
    done
  else
    exec 3>&- 9>&-   # no /proc (e.g. macOS): at least ours
  fi
}

# Run a PostgreSQL server command (initdb, pg_ctl) in a subshell with extra
# fds closed: directly when unprivileged, as the cluster owner when root
# (initdb and postgres refuse to run as root).
as_pg() {
  (
    close_extra_fds
    if ((IS_ROOT)); then
      cd / # the cluster owner may not be allowed into the caller's cwd
      if command -v runuser >/dev/null 2>&1; then
        exec runuser -u "$PG_OS_USER" -- "$@"
      fi
      # su passes the trailing words to the shell: $0=ensure-postgres, $@=cmd.
      exec su -s /bin/sh -c 'exec "$@"' "$PG_OS_USER" -- "$PROG" "$@"
    fi
    exec "$@"
  )
}

# admin_url URL: same server, database `postgres`. Keeps scheme, userinfo,
# host(s), port and query parameters (minus any dbname=... override).
admin_url() {
  local url=$1 scheme rest authority query="" kv
  local -a parts=() kept=()
  [[ $url =~ ^(postgres|postgresql):// ]] || return 1
  scheme=${url%%://*}
  rest=${url#*://}
  rest=${rest%%#*}                     # drop a fragment, if any
  if [[ $rest == *\?* ]]; then
    query=${rest#*\?}
    rest=${rest%%\?*}
  fi
  authority=${rest%%/*}                # [user[:password]@]host[:port][,...]
  if [[ -n $query ]]; then
    IFS='&' read -r -a parts <<<"$query"
    for kv in ${parts[@]+"${parts[@]}"}; do
      [[ -z $kv || $kv == dbname=* ]] && continue
      kept+=("$kv")
    done
    query=$(IFS='&'; printf '%s' "${kept[*]:-}")
  fi
  printf '%s://%s/postgres%s\n' "$scheme" "$authority" "${query:+?$query}"
}

# Hide the password of a URL for log messages.
redact() { sed -E 's#^([a-z]+://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# probe URL -> 0: answers and we can run a query as admin
#              1: nothing (usable) answers
#              2: server answers but connecting as admin failed ($PROBE_ERR)
PROBE_ERR=""
probe() {
  local url=$1 rc=0
  PROBE_ERR=""
  if [[ -n $PSQL ]]; then
    if PROBE_ERR=$(PGCONNECT_TIMEOUT=$CONNECT_TIMEOUT "$PSQL" -X -w -Atq -d "$url" \
      -c 'select 1' 2>&1 >/dev/null); then
      return 0
    fi
    PROBE_ERR=$(printf '%s' "$PROBE_ERR" | tr -s '\n\t ' '   ')
    [[ -n $PG_ISREADY ]] || return 1
  fi
  if [[ -n $PG_ISREADY ]]; then
    "$PG_ISREADY" -q -t "$CONNECT_TIMEOUT" -d "$url" >/dev/null 2>&1 || rc=$?
    if ((rc == 0)); then
      # Accepting connections; with psql available the login itself failed.
      [[ -n $PSQL ]] && return 2
      return 0
    fi
    return 1
  fi
  PROBE_ERR="neither psql nor pg_isready is available"
  return 1
}

# --------------------------------------------------------------------------
# Step 1: an existing server (DATABASE_URL, then the local default)
# --------------------------------------------------------------------------
try_existing_servers() {
  local admin="" rc

  if [[ -n ${DATABASE_URL:-} ]]; then
    admin=$(admin_url "$DATABASE_URL") ||
      die "DATABASE_URL is not a postgres:// or postgresql:// URL: $(redact "$DATABASE_URL")"
    log "probing DATABASE_URL server ($(redact "$admin"))..."
    rc=0; probe "$admin" || rc=$?
    case $rc in
      0) log "using server from DATABASE_URL"; emit_url "$admin"; exit 0 ;;
      # The user explicitly asked for this server: do not silently swap it.
      2) die "server named by DATABASE_URL answers but connecting to its 'postgres' database failed: $PROBE_ERR" ;;
      *) log "DATABASE_URL server is not reachable${PROBE_ERR:+ ($PROBE_ERR)}" ;;
    esac
  fi

  if [[ ${ENSURE_PG_SKIP_DEFAULT:-0} == 1 ]]; then
    log "ENSURE_PG_SKIP_DEFAULT=1: not probing $DEFAULT_URL"
  elif [[ -n ${DATABASE_URL:-} && $admin == "$DEFAULT_URL" ]]; then
    : # already probed above
  else
    log "probing local default $DEFAULT_URL..."
    rc=0; probe "$DEFAULT_URL" || rc=$?
    case $rc in
      0) log "using local default server"; emit_url "$DEFAULT_URL"; exit 0 ;;
      2) log "a server answers on 127.0.0.1:5432 but rejects user postgres without password; ignoring it ($PROBE_ERR)" ;;
      *) log "no usable server on 127.0.0.1:5432" ;;
    esac
  fi
}

# --------------------------------------------------------------------------
# Step 2: the private cluster in .data/pg
# --------------------------------------------------------------------------
private_url() { printf 'postgres://postgres@127.0.0.1:%s/postgres' "$1"; }

take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>>"$LOCK_FILE"
    if ! flock -w 180 9; then
      die "timed out waiting for another ensure-postgres.sh run (lock $LOCK_FILE)"
    fi
  fi
}

# Port of the running/recorded cluster: PORT file, else line 4 of the pidfile.
recorded_port() {
  local p=""
  [[ -f $PORT_FILE ]] && p=$(tr -dc '0-9' <"$PORT_FILE")
  if [[ -z $p && -f $DATA_DIR/postmaster.pid ]]; then
    p=$(sed -n 4p "$DATA_DIR/postmaster.pid" | tr -dc '0-9')
  fi
  printf '%s' "$p"
}

cluster_running() {
  [[ -f $DATA_DIR/postmaster.pid ]] || return 1
  [[ -n $PG_CTL ]] || locate_server_bins || return 1
  as_pg "$PG_CTL" -D "$DATA_DIR" status >/dev/null 2>&1
}

port_in_use() {
  local p=$1
  # Unix socket of another server using this port number in /tmp.
  [[ -e /tmp/.s.PGSQL.$p || -e /tmp/.s.PGSQL.$p.lock ]] && return 0
  if command -v ss >/dev/null 2>&1; then
    [[ $(ss -ltn "sport = :$p" 2>/dev/null | tail -n +2) ]] && return 0
  fi
  # Something accepts TCP connections on 127.0.0.1:p?
  (exec 8<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
  return 1
}

free_port_from() {
  local p=$1 last=$(($1 + PORT_TRIES))
  while ((p < last)); do
    port_in_use "$p" || { printf '%s' "$p"; return 0; }
    p=$((p + 1))
  done
  return 1
}

# Print the last lines of the server log (to stderr) to explain a failure.
show_log_tail() {
  [[ -f $LOG_FILE ]] || return 0
  log "last lines of $LOG_FILE:"
  tail -n 15 "$LOG_FILE" | sed 's/^/    /' >&2 || true
}

# Wait until the private cluster answers on port $1 (pg_ctl -w already waits;
# this also covers a cluster started by someone else that is still starting).
wait_ready() {
  local port=$1 url i
  url=$(private_url "$port")
  for ((i = 0; i < 30; i++)); do
    probe "$url" && return 0
    sleep 1
  done
  return 1
}

init_cluster() {
  local tmp=$PG_ROOT/data.initdb
  if [[ -d $DATA_DIR && ! -f $DATA_DIR/PG_VERSION ]]; then
    # We initdb into a temp dir and rename, so a half-made DATA_DIR is not ours.
    rmdir "$DATA_DIR" 2>/dev/null ||
      die "$DATA_DIR exists but is not a PostgreSQL data directory; remove it and retry"
  fi
  [[ -d $DATA_DIR ]] && return 0

  log "initialising private cluster in $DATA_DIR ($("$INITDB" --version 2>/dev/null || echo initdb))"
  rm -rf "$tmp"
  if ((IS_ROOT)); then
    install -d -o "$PG_OS_USER" -g "$(id -gn "$PG_OS_USER")" -m 700 "$tmp"
  else
    install -d -m 700 "$tmp"
  fi
  # --no-instructions (PG >= 13) drops the misleading "start it with" hint.
  local -a extra=()
  "$INITDB" --help 2>/dev/null | grep -q -- --no-instructions && extra+=(--no-instructions)
  if ! as_pg "$INITDB" -D "$tmp" --auth=trust --username=postgres \
    --encoding=UTF8 --locale=C ${extra[@]+"${extra[@]}"} >&2; then
    rm -rf "$tmp"
    die "initdb failed (see messages above)"
  fi
  mv "$tmp" "$DATA_DIR"
}

# Start the (initialised, stopped) cluster; sets STARTED_PORT. (Not run via
# $(...) so that die() really ends the script with a single message.)
STARTED_PORT=""
start_cluster() {
  local port attempt rc
  port=$(recorded_port)
  if [[ -z $port ]] || port_in_use "$port"; then
    port=$(free_port_from "$PORT_START") ||
      die "no free TCP port in $PORT_START..$((PORT_START + PORT_TRIES - 1))"
  fi
  for attempt in 1 2 3 4 5; do
    log "starting private cluster on 127.0.0.1:$port (log: $LOG_FILE)"
    rc=0
    as_pg "$PG_CTL" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 90 \
      -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on" \
      start >&2 || rc=$?
    if ((rc == 0)); then
      printf '%s\n' "$port" >"$PORT_FILE.tmp"
      mv "$PORT_FILE.tmp" "$PORT_FILE"
      STARTED_PORT=$port
      return 0
    fi
    # Lost a race for the port? Try the next free one; otherwise give up.
    if [[ -f $LOG_FILE ]] && tail -n 20 "$LOG_FILE" | grep -qi 'address already in use\|could not create lock file'; then
      log "port $port was taken meanwhile (attempt $attempt); trying another"
      port=$(free_port_from $((port + 1))) ||
        die "no free TCP port after $port"
      continue
    fi
    break
  done
  show_log_tail
  die "could not start the private PostgreSQL cluster in $DATA_DIR (see $LOG_FILE)"
}

# True when the cluster's OS user may `test $1 $2` (as root, via runuser or su).
pg_user_can() {
  runuser -u "$PG_OS_USER" -- test "$1" "$2" 2>/dev/null ||
    su -s /bin/sh -c "test $1 '$2'" "$PG_OS_USER" 2>/dev/null
}

# As root, PostgreSQL runs as the postgres user, which cannot enter a clone under /root or a
# `mktemp -d` folder (mode 0700). Such a clone keeps its cluster in a directory of its own under
# OUTSIDE_ROOT (named after the clone's path), and .data/pg becomes a link to it, so `stop` and
# `purge` find it again; nothing outside the clone is touched when the clone is reachable.
place_cluster_root() {
  local outside
  ((IS_ROOT)) || return 0
  [[ -L $REPO_PG ]] && return 0
  mkdir -p "$REPO/.data"
  ensure_os_user
  pg_user_can -x "$REPO/.data" && return 0
  # A cluster made here before (e.g. by a run that was not root) is kept and used as it is.
  [[ -f $REPO_PG/data/PG_VERSION ]] && return 0
  rm -rf "$REPO_PG"
  outside=$OUTSIDE_ROOT/$(printf '%s' "$REPO" | sha256sum | cut -c1-16)
  log "user '$PG_OS_USER' cannot reach $REPO; keeping the private cluster in $outside (linked as .data/pg)"
  install -d -m 755 "$(dirname "$outside")"
  install -d -o "$PG_OS_USER" -g "$(id -gn "$PG_OS_USER")" -m 700 "$outside"
  pg_user_can -w "$outside" ||
    die "user '$PG_OS_USER' cannot write to $outside; make its parent directories traversable (chmod o+x) and retry"
  ln -sfn "$outside" "$REPO_PG"
  set_pg_root "$outside"
}

ensure_private_cluster() {
  local port url

  ((IS_ROOT)) && pick_os_user
  place_cluster_root
  mkdir -p "$PG_ROOT"
  take_lock
  ((IS_ROOT)) && pick_os_user

  # Reuse a running cluster (pidfile + pg_ctl status + it answers).
  if cluster_running; then
    port=$(recorded_port)
    if [[ -n $port ]] && wait_ready "$port"; then
      log "reusing running private cluster on 127.0.0.1:$port"
      emit_url "$(private_url "$port")"
      return 0
    fi
    die "private cluster in $DATA_DIR is running but does not answer (port '${port:-unknown}'); try: $0 stop"
  fi

  need_server_bins
  [[ -n $PSQL || -n $PG_ISREADY ]] || locate_client_tools

  if ((IS_ROOT)); then
    # initdb/postgres refuse to run as root: hand the directory to postgres.
    chown "$PG_OS_USER": "$PG_ROOT"
    touch "$LOG_FILE"
    chown "$PG_OS_USER": "$LOG_FILE"
    pg_user_can -w "$PG_ROOT" ||
      die "user '$PG_OS_USER' cannot write to $PG_ROOT"
  fi

  init_cluster
  start_cluster
  port=$STARTED_PORT
  url=$(private_url "$port")
  wait_ready "$port" ||
    die "private cluster started on port $port but does not answer queries${PROBE_ERR:+: $PROBE_ERR}"
  log "private cluster ready on 127.0.0.1:$port"
  emit_url "$url"
}

stop_private_cluster() {
  local pid
  if [[ ! -f $DATA_DIR/postmaster.pid ]]; then
    log "private cluster is not running (nothing to stop)"
    return 0
  fi
  mkdir -p "$PG_ROOT"
  take_lock
  ((IS_ROOT)) && pick_os_user
  if locate_server_bins; then
    if as_pg "$PG_CTL" -D "$DATA_DIR" status >/dev/null 2>&1; then
      log "stopping private cluster in $DATA_DIR"
      as_pg "$PG_CTL" -D "$DATA_DIR" -m fast -w -t 90 stop >&2 ||
        die "pg_ctl stop failed for $DATA_DIR"
    else
      log "private cluster is not running (stale pidfile)"
    fi
    return 0
  fi
  # No pg_ctl any more (uninstalled?): fall back to a fast-shutdown signal.
  pid=$(head -n 1 "$DATA_DIR/postmaster.pid" | tr -dc '0-9')
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    log "pg_ctl not found; sending SIGINT (fast shutdown) to postmaster $pid"
    kill -INT "$pid"
    for _ in $(seq 1 90); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
    die "postmaster $pid did not stop"
  fi
  log "private cluster is not running (stale pidfile)"
}

# Stops the cluster and removes it, with the directory outside the clone when .data/pg links there.
purge_private_cluster() {
  stop_private_cluster
  if [[ -L $REPO_PG ]]; then
    log "removing $PG_ROOT"
    rm -rf "$PG_ROOT"
    rm -f "$REPO_PG"
  else
    rm -rf "$REPO_PG"
  fi
}

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
case ${1:-start} in
  start)
    locate_client_tools
    if [[ -z $PSQL && -z $PG_ISREADY ]]; then
      # Fresh machine: we cannot even probe. As root, install PostgreSQL now
      # (we would need it for the private cluster anyway).
      if ((IS_ROOT)); then
        apt_install_postgres
        locate_client_tools
      else
        die "no PostgreSQL client tools (psql, pg_isready) found; install PostgreSQL (Debian/Ubuntu: sudo apt-get install postgresql)"
      fi
    fi
    try_existing_servers
    ensure_private_cluster
    ;;
  stop) stop_private_cluster ;;
  purge) purge_private_cluster ;;
  -h | --help | help) usage ;;
  *)
    usage
    die "unknown command '$1' (expected: start, stop, purge)"
    ;;
esac
