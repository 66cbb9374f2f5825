#!/usr/bin/env bash
# replica-pair.sh — a PostgreSQL primary and a streaming standby of it, on loopback, for the
# read-replica tests (tests/e2e/replicas.rs) and for trying INVICTA_REPLICA_URLS by hand.
#
#   scripts/replica-pair.sh start DIR   initdb a primary in DIR/primary, pg_basebackup -R a
#                                       standby of it into DIR/standby, start both on free
#                                       ports; prints two lines: the primary's and the
#                                       standby's admin URL (database postgres)
#   scripts/replica-pair.sh stop DIR    stop both and delete DIR
#
# As root, the servers run as the `postgres` system user (PostgreSQL refuses root), and DIR is
# made for that user. Server binaries: PG_BINDIR, else the highest /usr/lib/postgresql/*/bin,
# else the directory of PATH's initdb (make test installs PostgreSQL when it is missing).
set -euo pipefail

die() {
  printf 'replica-pair: error: %s\n' "$*" >&2
  exit 1
}
[[ $# -eq 2 ]] || die "usage: $0 start|stop DIR"
cmd=$1
dir=$2

# The directory holding all three tools: PG_BINDIR, the highest Debian one, or PATH's initdb's.
bindir() {
  local d
  if [[ -n ${PG_BINDIR:-} ]]; then
    printf '%s\n' "$PG_BINDIR"
    return
  fi
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV) "$(dirname "$(command -v initdb || echo /nonexistent/initdb)")"; do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/pg_basebackup ]]; then
      printf '%s\n' "$d"
      return
    fi
  done
}
BIN=$(bindir)
for tool in initdb pg_ctl pg_basebackup; do
  [[ -n $BIN && -x $BIN/$tool ]] || die "$tool not found (set PG_BINDIR)"
done

# Runs a server tool as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case $cmd in
start)
  [[ -e $dir ]] && die "$dir exists"
  mkdir -p "$dir"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  chmod 700 "$dir"
  primary=$dir/primary standby=$dir/standby
  as_owner "$BIN/initdb" -D "$primary" --auth=trust --username=postgres --encoding=UTF8 \
    --locale=C --no-instructions >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    die "initdb failed"
  }
  p1=$(free_port)
  as_owner "$BIN/pg_ctl" -D "$primary" -l "$dir/primary.log" -w -t 60 \
    -o "-p $p1 -k /tmp -c listen_addresses=127.0.0.1 -c wal_level=replica -c max_wal_senders=4" \
    start >/dev/null || die "the primary did not start (see $dir/primary.log)"
  # A standby is a copy of the primary's files plus the settings to follow it (-R).
  as_owner "$BIN/pg_basebackup" -h 127.0.0.1 -p "$p1" -U postgres -D "$standby" -R -X stream \
    >"$dir/basebackup.log" 2>&1 || {
    cat "$dir/basebackup.log" >&2
    die "pg_basebackup failed"
  }
  p2=$(free_port)
  as_owner "$BIN/pg_ctl" -D "$standby" -l "$dir/standby.log" -w -t 60 \
    -o "-p $p2 -k /tmp -c listen_addresses=127.0.0.1 -c hot_standby=on" \
    start >/dev/null || die "the standby did not start (see $dir/standby.log)"
  printf 'postgres://postgres@127.0.0.1:%s/postgres\n' "$p1" "$p2"
  ;;
stop)
  for d in standby primary; do
    [[ -d $dir/$d ]] && as_owner "$BIN/pg_ctl" -D "$dir/$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
  ;;
*) die "usage: $0 start|stop DIR" ;;
esac
