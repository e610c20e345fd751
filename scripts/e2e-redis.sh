#!/usr/bin/env bash
# The Redis of the Playwright suite: `start PORT` runs Debian's redis-server on 127.0.0.1:PORT,
# its data (append-only, so a restart keeps it) and PID file in target/e2e-redis/; `stop` stops
# it by PID (SIGTERM: it writes its data out first) and waits until it is gone. The Redis journey
# calls both, to take Redis away from a running app and bring it back.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$PWD/target/e2e-redis"
PIDFILE="$DIR/redis.pid"
PORTFILE="$DIR/port"
mkdir -p "$DIR"

case "${1:-}" in
  start)
    port="${2:-$(cat "$PORTFILE")}"
    echo "$port" >"$PORTFILE"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes --dir "$DIR" \
      --daemonize yes --pidfile "$PIDFILE" --logfile "$DIR/redis.log"
    for _ in $(seq 1 200); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
      sleep 0.05
    done
    echo "redis-server did not come up on port $port" >&2
    exit 1
    ;;
  stop)
    [ -f "$PIDFILE" ] || exit 0
    pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$PIDFILE"
    ;;
  *)
    echo "usage: $0 start PORT | stop" >&2
    exit 2
    ;;
esac
