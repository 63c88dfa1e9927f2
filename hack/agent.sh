#!/usr/bin/env bash
# The master agent (cmd/agent) as a process beside a Cyrus master of hack/cyrus-pair.sh,
# the way it runs on a mail server of its own: for `make demo` and the e2e test, whose
# replicator pods reach it over the network instead of mounting the master's disk.
#
#   hack/agent.sh start DIR PAIR_DIR [--channel NAME] [--bin AGENT]
#   hack/agent.sh stop DIR
#   hack/agent.sh status DIR
#
# start builds cmd/agent (unless --bin names one), makes a throw-away CA and a
# certificate for 127.0.0.1 (openssl; DIR/tls/ca.pem is what the replicator verifies the
# agent against), a random token (DIR/token), and starts the agent as Cyrus's user (it
# reads mailboxes.db and consumes the channel, both Cyrus's files) on 127.0.0.1 and a
# free port: the address the local cluster's pods reach, since they share the node's
# network (docs/local-cluster.md); nothing listens on another interface. The channel
# defaults to the pair's (cyrusrepl). It waits for /healthz and writes DIR/agent.env:
# AGENT_URL, AGENT_TOKEN_FILE, AGENT_CA, AGENT_PID, AGENT_LOG.
# stop ends only the process start started (DIR/agent.pid holds "PID STARTTIME", so a
# recycled PID is never signalled).
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HACK/.." && pwd)
WAIT_SECONDS=${CYRUSREPL_AGENT_WAIT:-30}

die() { echo "agent.sh: $*" >&2; exit 1; }
log() { [ -n "${CYRUSREPL_AGENT_QUIET:-}" ] || echo "agent.sh: $*" >&2; }

# proc_start PID: the process start time in clock ticks (field 22 of /proc/PID/stat).
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  awk '{print $20}' <<<"$stat"
}

alive() {
  local state
  [ -n "$1" ] || return 1
  state=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  state=${state##*) }
  [ "${state%% *}" != Z ]
}

# recorded_pid DIR: the recorded PID, if that very process is still alive.
recorded_pid() {
  local pid st
  [ -f "$1/agent.pid" ] || return 1
  read -r pid st <"$1/agent.pid" || return 1
  alive "$pid" && [ "$(proc_start "$pid")" = "$st" ] || return 1
  echo "$pid"
}

# free_port: a free TCP port on 127.0.0.1 below the ephemeral range, from 11000 up
# (the local cluster needs Kubernetes's fixed ports 10248-10259).
free_port() {
  local used p hi
  hi=$(awk '{print $1 - 1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
  used=" $(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u | tr '\n' ' ') "
  while :; do
    p=$((11000 + (RANDOM * 32768 + RANDOM) % (hi - 11000 + 1)))
    case "$used" in *" $p "*) continue ;; esac
    echo "$p"; return
  done
}

make_tls() {
  local d=$1/tls
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cyrusrepl agent test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || die "openssl: making the CA failed"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=cyrusrepl agent" \
    -keyout "$d/agent.key" -out "$d/agent.csr" 2>/dev/null || die "openssl: making the key failed"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/agent.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -extfile "$d/ext.cnf" -out "$d/agent.pem" 2>/dev/null || die "openssl: signing the certificate failed"
  rm -f "$d/ca.key" "$d/agent.csr" "$d/ext.cnf" "$d/ca.srl" # nothing else is ever signed
  chmod 0600 "$d/agent.key"
}

cmd_start() {
  local dir=$1 pair=$2 channel="" bin=""
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --channel) channel=${2:?--channel needs a name}; shift 2 ;;
      --bin) bin=${2:?--bin needs a path}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -f "$pair/pair.env" ] || die "no Cyrus pair at $pair (hack/cyrus-pair.sh start $pair)"
  # shellcheck disable=SC1091
  . "$pair/pair.env"
  channel=${channel:-$CHANNEL}
  if recorded_pid "$dir" >/dev/null; then die "an agent already runs for $dir (hack/agent.sh stop $dir)"; fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -z "$bin" ]; then
    bin=$dir/agent
    (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/agent) || die "building cmd/agent failed"
  fi
  make_tls "$dir"
  (umask 077; head -c32 /dev/urandom | base64 >"$dir/token")
  # Cyrus's user reads its own files; the token and key stay readable by it alone.
  local user=${CYRUS_USER:-cyrus} group
  group=$(id -gn "$user") || die "no user $user"
  if [ "$(id -u)" = 0 ]; then chown -R "$user:$group" "$dir/tls" "$dir/token"; fi
  local port addr
  port=$(free_port)
  addr=127.0.0.1:$port
  local run=()
  if [ "$(id -u)" = 0 ]; then run=(setpriv --reuid="$user" --regid="$group" --init-groups --); fi
  # setpriv execs the agent: $! is the agent's own PID.
  "${run[@]}" "$bin" --master-config "$MASTER_CONFIG" --channel "$channel" --listen "$addr" \
    --token-file "$dir/token" --tls-cert "$dir/tls/agent.pem" --tls-key "$dir/tls/agent.key" \
    >"$dir/agent.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(proc_start "$pid")" >"$dir/agent.pid"
  local deadline=$((SECONDS + WAIT_SECONDS))
  until curl -fsS --cacert "$dir/tls/ca.pem" "https://$addr/healthz" >/dev/null 2>&1; do
    if ! alive "$pid"; then
      tail -20 "$dir/agent.log" >&2 || true; rm -f "$dir/agent.pid"; die "the agent exited (log: $dir/agent.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then cmd_stop "$dir"; die "the agent did not answer on $addr within ${WAIT_SECONDS}s"; fi
    sleep 0.1
  done
  {
    echo "AGENT_URL=https://$addr"
    echo "AGENT_TOKEN_FILE=$dir/token"
    echo "AGENT_CA=$dir/tls/ca.pem"
    echo "AGENT_PID=$pid"
    echo "AGENT_LOG=$dir/agent.log"
  } >"$dir/agent.env"
  log "agent up (pid $pid) on https://$addr for channel ${channel:-(unnamed)} of $MASTER_CONFIG"
}

cmd_stop() {
  local dir=$1 pid
  if pid=$(recorded_pid "$dir"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped the agent (pid $pid)"
  fi
  rm -f "$dir/agent.pid" "$dir/agent.env"
}

cmd_status() {
  local pid
  if pid=$(recorded_pid "$1"); then echo "agent: running (pid $pid)"; else echo "agent: stopped"; return 1; fi
}

[ $# -ge 2 ] || die "usage: $0 start DIR PAIR_DIR [--channel NAME] [--bin AGENT] | stop DIR | status DIR"
case "$1" in
  start) [ $# -ge 3 ] || die "usage: $0 start DIR PAIR_DIR [--channel NAME] [--bin AGENT]"; shift; cmd_start "$@" ;;
  stop) cmd_stop "$2" ;;
  status) cmd_status "$2" ;;
  *) die "unknown command $1" ;;
esac
