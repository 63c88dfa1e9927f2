#!/usr/bin/env bash
# A real Cyrus IMAP 3.6 replication pair on 127.0.0.1, for tests and the demo.
#
#   hack/cyrus-pair.sh start DIR [--delete-mode delayed|immediate] [--second-replica]
#                                [--namespace netnews|default] [--deleted-prefix PREFIX] [--tls]
#                                [--master-partition NAME]... [--master-set 'KEY: VALUE']...
#   hack/cyrus-pair.sh stop DIR
#   hack/cyrus-pair.sh status DIR
#
# start installs Debian's Cyrus packages when missing (hack/cyrus-install.sh), then lays
# out DIR/{master,replica[,replica2]}, each with its own imapd.conf and
# cyrus.conf (imap, lmtp, sync_server and sieve services on free loopback ports), creates
# the SASL users, starts each instance's `master` with its own pidfile and waits until
# every IMAP and sync banner answers. It writes DIR/pair.env (shell) and DIR/pair.json.
# The master writes sync-log channels `cyrusrepl` (ours) and `stock` (for a stock
# sync_client, aimed at replica2 when there is one). Cyrus logs only through syslog, so a
# small sink (hack/syslogsink) serves /dev/log while any pair is up; lines are tagged
# with the pair's own prefix, and DIR/syslog.log links to the shared file.
# --namespace netnews (the default here) runs unixhierarchysep: no, altnamespace: no and
# virtdomains: off; --namespace default runs Cyrus 3's defaults, unixhierarchysep: yes and
# altnamespace: yes, plus virtdomains: userid (users like john.doe@example.com).
# --deleted-prefix sets imapd.conf's deletedprefix (Cyrus's default is DELETED).
# --tls makes a CA (DIR/tls/ca.pem) and a certificate per instance for 127.0.0.1 and its
# servername, and sets tls_server_cert/tls_server_key: sync_server and imapd then offer
# STARTTLS (plaintext stays allowed, so tests can also check the plaintext mode).
# --master-partition NAME gives the master (only) a second partition NAME, in
# DIR/master/spool-NAME: a replica that lacks a partition of its master.
# --master-set 'KEY: VALUE' sets one option of the master's imapd.conf (replacing the
# line the script would write, e.g. 'sync_log_channels: stock', or 'sync_log: 0').
# Options must be set at start: Cyrus's master keeps idle children, which read
# imapd.conf once, so an edit after the start reaches some processes and not others.
# stop ends only what start started, by PID.
set -euo pipefail

CYRUS_BIN=${CYRUS_BIN:-/usr/lib/cyrus/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SINK_DIR=${CYRUSREPL_SYSLOG_DIR:-/tmp/cyrusrepl-syslog}
REPL_PASSWORD=${CYRUSREPL_REPL_PASSWORD:-replpw}
ADMIN_PASSWORD=${CYRUSREPL_ADMIN_PASSWORD:-adminpw}
SASL_USERS=(alice bob carol)   # non-admin users with password "<user>pw"

die() { echo "cyrus-pair: $*" >&2; exit 1; }
log() { [ -n "${CYRUS_PAIR_QUIET:-}" ] || echo "cyrus-pair: $*" >&2; }

used_ports() { ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u; }

# pick_ports N: N distinct free TCP ports below the kernel's ephemeral range (so that no
# client connection takes one between the pick and Cyrus's bind), from 11000 up: the
# local cluster (hack/cluster.sh) needs Kubernetes's fixed ports 10248-10259 (a pair
# that took the kubelet's 10250 once stopped the e2e test from starting its cluster).
pick_ports() {
  local n=$1 used picked=() p lo=11000 hi
  hi=$(awk '{print $1 - 1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
  [ "$hi" -gt $((lo + 1000)) ] || { lo=20000; hi=59999; }
  used=" $(used_ports | tr '\n' ' ') "
  while [ ${#picked[@]} -lt "$n" ]; do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    case "$used ${picked[*]} " in *" $p "*) continue ;; esac
    picked+=("$p")
  done
  echo "${picked[@]}"
}

# banner_ok PORT SERVERNAME: true once the "* OK" banner line on PORT names SERVERNAME, so
# that a port lost to another pair's server (a bind race) is not mistaken for ours.
banner_ok() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; while read -r -t 2 line <&3; do case \$line in '* OK'*\"$2\"*) exit 0;; '* OK'*) exit 2;; esac; done; exit 1" 2>/dev/null
}

# --- syslog sink, shared by every pair on the machine ---------------------------------
sink_register() {
  mkdir -p "$SINK_DIR/pairs"
  (
    flock 8
    echo "$1" > "$SINK_DIR/pairs/$2"
    local pid=""
    [ -f "$SINK_DIR/sink.pid" ] && pid=$(cat "$SINK_DIR/sink.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then exit 0; fi
    if [ -S /dev/log ] && [ -z "$pid" ]; then
      log "/dev/log is served by something else; Cyrus syslog lines go there"; exit 0
    fi
    local bin="$SINK_DIR/syslogsink"
    if [ ! -x "$bin" ] || [ "$REPO/hack/syslogsink/main.go" -nt "$bin" ]; then
      (cd "$REPO" && CGO_ENABLED=0 go build -o "$bin" ./hack/syslogsink) || { log "cannot build the syslog sink; continuing without syslog"; exit 0; }
    fi
    setsid "$bin" -socket /dev/log -out "$SINK_DIR/syslog.log" </dev/null >>"$SINK_DIR/sink.err" 2>&1 8>&- &
    echo $! > "$SINK_DIR/sink.pid"
    for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.02; done
  ) 8>"$SINK_DIR/lock"
}

sink_unregister() {
  [ -d "$SINK_DIR/pairs" ] || return 0
  (
    flock 8
    rm -f "$SINK_DIR/pairs/$1"
    # forget pairs whose master processes are gone (a test killed without cleanup)
    for f in "$SINK_DIR"/pairs/*; do
      [ -e "$f" ] || continue
      d=$(cat "$f"); alive=0
      for pf in "$d"/*/run/master.pid; do
        [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null && alive=1
      done
      [ $alive = 1 ] || rm -f "$f"
    done
    if [ -z "$(ls -A "$SINK_DIR/pairs" 2>/dev/null)" ] && [ -f "$SINK_DIR/sink.pid" ]; then
      pid=$(cat "$SINK_DIR/sink.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
      rm -f "$SINK_DIR/sink.pid"
    fi
  ) 8>"$SINK_DIR/lock"
}

# --- configuration ---------------------------------------------------------------------
render_instance() { # name dir imap lmtp sync sieve role(master|replica) prefix
  local name=$1 d=$2 imap=$3 lmtp=$4 sync=$5 sieve=$6 role=$7 prefix=$8
  mkdir -p "$d"/conf/{db,sync,log,msg,user,quota,sieve,lock,socket,proc} "$d"/spool "$d"/run/{proc,lock,socket}
  cat > "$d/imapd.conf" <<CONF
servername: $name.$PAIR_ID.pair.test
configdirectory: $d/conf
defaultpartition: default
partition-default: $d/spool
sievedir: $d/conf/sieve
proc_path: $d/run/proc
mboxname_lockpath: $d/run/lock
lmtpsocket: $d/run/socket/lmtp
idlesocket: $d/run/socket/idle
notifysocket: $d/run/socket/notify
syslog_prefix: $prefix
cyrus_user: $CYRUS_USER
cyrus_group: $CYRUS_GROUP
$NAMESPACE_CONF
deletedprefix: $DELETED_PREFIX
hashimapspool: false
conversations: 0
delete_mode: $DELETE_MODE
expunge_mode: delayed
admins: admin repl
proxyservers: admin
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $d/sasldb2
sasl_mech_list: PLAIN LOGIN
sasl_auto_transition: no
umask: 077
lmtp_downcase_rcpt: yes
failedloginpause: 1
CONF
  if [ "$TLS" = 1 ]; then
    make_cert "$d" "$name.$PAIR_ID.pair.test"
    cat >> "$d/imapd.conf" <<CONF
tls_server_cert: $d/tls/server.pem
tls_server_key: $d/tls/server.key
tls_client_ca_file: $BASE_DIR/tls/ca.pem
CONF
    # Stock sync_client runs STARTTLS only when the server offers no mechanism before
    # it: replica2 (its target) hides PLAIN until TLS, so that connection is encrypted too.
    if [ "$name" = replica2 ]; then
      sed -i 's/^allowplaintext: yes$/allowplaintext: no/' "$d/imapd.conf"
    fi
  fi
  if [ "$role" = master ]; then
    cat >> "$d/imapd.conf" <<CONF
sync_log: 1
sync_log_channels: cyrusrepl stock
sync_host: 127.0.0.1
sync_port: $REPLICA_SYNC
sync_authname: repl
sync_password: $REPL_PASSWORD
sync_try_imap: 0
sync_repeat_interval: 1s
sync_shutdown_file: $d/run/sync_shutdown
sync_timeout: 60s
sync_reconnect_maxwait: 5s
stock_sync_host: 127.0.0.1
stock_sync_port: $STOCK_SYNC
stock_sync_authname: repl
stock_sync_password: $REPL_PASSWORD
stock_sync_try_imap: 0
stock_sync_shutdown_file: $d/run/sync_shutdown_stock
CONF
  fi
  if [ "$role" = master ]; then
    local part kv key
    for part in "${MASTER_PARTITIONS[@]}"; do
      mkdir -p "$d/spool-$part"
      echo "partition-$part: $d/spool-$part" >> "$d/imapd.conf"
    done
    for kv in "${MASTER_SETS[@]}"; do
      key=${kv%%:*}
      sed -i "/^$key:/d" "$d/imapd.conf"
      echo "$kv" >> "$d/imapd.conf"
    done
  fi
  cat > "$d/cyrus.conf" <<CONF
START {
  recover   cmd="$CYRUS_BIN/ctl_cyrusdb -C $d/imapd.conf -r"
}
SERVICES {
  imap      cmd="$CYRUS_BIN/imapd -C $d/imapd.conf"       listen="127.0.0.1:$imap" prefork=0 maxchild=50
  lmtp      cmd="$CYRUS_BIN/lmtpd -C $d/imapd.conf -a"    listen="127.0.0.1:$lmtp" prefork=0 maxchild=20
  lmtpunix  cmd="$CYRUS_BIN/lmtpd -C $d/imapd.conf"       listen="$d/run/socket/lmtp" prefork=0 maxchild=20
  sync      cmd="$CYRUS_BIN/sync_server -C $d/imapd.conf" listen="127.0.0.1:$sync" prefork=0 maxchild=20
  sieve     cmd="$CYRUS_BIN/timsieved -C $d/imapd.conf"   listen="127.0.0.1:$sieve" prefork=0 maxchild=10
}
EVENTS {
  checkpoint cmd="$CYRUS_BIN/ctl_cyrusdb -C $d/imapd.conf -c" period=30
}
CONF
  local servername="$name.$PAIR_ID.pair.test" u
  printf '%s' "$ADMIN_PASSWORD" | saslpasswd2 -c -p -f "$d/sasldb2" -u "$servername" admin
  printf '%s' "$REPL_PASSWORD" | saslpasswd2 -c -p -f "$d/sasldb2" -u "$servername" repl
  for u in "${SASL_USERS[@]}"; do
    printf '%s' "${u}pw" | saslpasswd2 -c -p -f "$d/sasldb2" -u "$servername" "$u"
  done
}

# make_ca DIR: a throw-away CA for the pair's certificates (DIR/tls/ca.pem, ca.key).
make_ca() {
  mkdir -p "$1/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cyrusrepl test pair CA" \
    -keyout "$1/tls/ca.key" -out "$1/tls/ca.pem" 2>/dev/null
}

# make_cert INSTANCE_DIR SERVERNAME: a key and a certificate signed by the pair's CA, for
# 127.0.0.1, localhost and SERVERNAME.
make_cert() {
  local d=$1 cn=$2 ca=$BASE_DIR/tls
  mkdir -p "$d/tls"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$d/tls/server.key" -out "$d/tls/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:%s\n' "$cn" > "$d/tls/ext.cnf"
  openssl x509 -req -in "$d/tls/server.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 30 -extfile "$d/tls/ext.cnf" -out "$d/tls/server.pem" 2>/dev/null
  chmod 0600 "$d/tls/server.key"
}

start_instance() { # dir
  local d=$1
  "$CYRUS_BIN/master" -C "$d/imapd.conf" -M "$d/cyrus.conf" -p "$d/run/master.pid" -L "$d/master.log" -d
}

# stop_instances DIR...: SIGTERM every instance's master at once (it ends its children),
# wait for all, then SIGKILL whatever is left, children included, by PID.
stop_instances() {
  local d pid pids=() children=()
  for d in "$@"; do
    [ -f "$d/run/master.pid" ] || continue
    pid=$(cat "$d/run/master.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      pids+=("$pid")
      mapfile -t -O "${#children[@]}" children < <(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ')
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  local alive
  for _ in $(seq 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.05
  done
  for pid in "${pids[@]}" "${children[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true; done
  for d in "$@"; do rm -f "$d/run/master.pid"; done
}

cmd_start() {
  local base=$1; shift
  DELETE_MODE=delayed; SECOND=0; NAMESPACE=netnews; DELETED_PREFIX=DELETED; TLS=0
  MASTER_PARTITIONS=(); MASTER_SETS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --master-partition) MASTER_PARTITIONS+=("$2"); shift 2 ;;
      --master-set) MASTER_SETS+=("$2"); shift 2 ;;
      --namespace) NAMESPACE=$2; shift 2 ;;
      --namespace=*) NAMESPACE=${1#*=}; shift ;;
      --deleted-prefix) DELETED_PREFIX=$2; shift 2 ;;
      --deleted-prefix=*) DELETED_PREFIX=${1#*=}; shift ;;
      --tls) TLS=1; shift ;;
      --delete-mode) DELETE_MODE=$2; shift 2 ;;
      --delete-mode=*) DELETE_MODE=${1#*=}; shift ;;
      --second-replica) SECOND=1; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
  case "$DELETE_MODE" in delayed|immediate) ;; *) die "delete mode must be delayed or immediate" ;; esac
  case "$NAMESPACE" in
    netnews) NAMESPACE_CONF=$'unixhierarchysep: no\naltnamespace: no\nvirtdomains: off' ;;
    default) NAMESPACE_CONF=$'unixhierarchysep: yes\naltnamespace: yes\nvirtdomains: userid' ;;
    *) die "namespace must be netnews or default" ;;
  esac
  case "$DELETED_PREFIX" in ''|*[!A-Za-z0-9_-]*) die "deleted prefix must be letters, digits, _ or -" ;; esac
  local x
  for x in "${MASTER_PARTITIONS[@]}"; do
    case "$x" in ''|*[!a-z0-9]*) die "partition name must be lower-case letters and digits" ;; esac
  done
  for x in "${MASTER_SETS[@]}"; do
    case "$x" in [a-z]*:*) ;; *) die "--master-set wants 'key: value', got '$x'" ;; esac
  done
  "$HERE/cyrus-install.sh" || die "Cyrus is not installed and could not be installed (hack/cyrus-install.sh)"
  if [ "$(id -u)" = 0 ]; then CYRUS_USER=cyrus; CYRUS_GROUP=mail
  else CYRUS_USER=$(id -un); CYRUS_GROUP=$(id -gn); fi

  mkdir -p "$base"; base=$(cd "$base" && pwd)
  [ -e "$base/pair.env" ] && die "$base already holds a pair; stop it first"
  chmod 0755 "$base"
  local id; id=$(basename "$base" | tr -c 'A-Za-z0-9\n' '-' | tail -c 24)
  PAIR_ID=$id
  BASE_DIR=$base
  if [ "$TLS" = 1 ]; then make_ca "$base"; fi
  local instances=(master replica) ports
  [ $SECOND = 1 ] && instances+=(replica2)
  read -r -a ports <<<"$(pick_ports $((4 * ${#instances[@]})))"
  declare -A IMAP LMTP SYNC SIEVE
  local i=0 n
  for n in "${instances[@]}"; do
    IMAP[$n]=${ports[$i]}; LMTP[$n]=${ports[$((i+1))]}; SYNC[$n]=${ports[$((i+2))]}; SIEVE[$n]=${ports[$((i+3))]}
    i=$((i+4))
  done
  REPLICA_SYNC=${SYNC[replica]}
  if [ $SECOND = 1 ]; then STOCK_SYNC=${SYNC[replica2]}; else STOCK_SYNC=${SYNC[replica]}; fi
  for n in "${instances[@]}"; do
    local role=replica; [ "$n" = master ] && role=master
    render_instance "$n" "$base/$n" "${IMAP[$n]}" "${LMTP[$n]}" "${SYNC[$n]}" "${SIEVE[$n]}" "$role" "cyrusrepl-$id-$n"
  done
  if [ "$(id -u)" = 0 ]; then chown -R "$CYRUS_USER:$CYRUS_GROUP" "${instances[@]/#/$base/}"; fi

  sink_register "$base" "$id"
  ln -sf "$SINK_DIR/syslog.log" "$base/syslog.log"
  # written before the start so that a failed start can still be stopped
  {
    echo "PAIR_DIR=$base"; echo "PAIR_ID=$id"; echo "DELETE_MODE=$DELETE_MODE"
    echo "NAMESPACE=$NAMESPACE"; echo "DELETED_PREFIX=$DELETED_PREFIX"
    if [ "$TLS" = 1 ]; then echo "TLS_CA=$base/tls/ca.pem"; fi
    echo "REPL_USER=repl"; echo "REPL_PASSWORD=$REPL_PASSWORD"
    echo "ADMIN_USER=admin"; echo "ADMIN_PASSWORD=$ADMIN_PASSWORD"; echo "CHANNEL=cyrusrepl"
    for n in "${instances[@]}"; do
      local up; up=$(echo "$n" | tr a-z A-Z)
      echo "${up}_DIR=$base/$n"; echo "${up}_CONFIG=$base/$n/imapd.conf"
      echo "${up}_IMAP=127.0.0.1:${IMAP[$n]}"; echo "${up}_LMTP=127.0.0.1:${LMTP[$n]}"
      echo "${up}_SYNC=127.0.0.1:${SYNC[$n]}"; echo "${up}_SIEVE=127.0.0.1:${SIEVE[$n]}"
    done
  } > "$base/pair.env"

  local t0=$SECONDS
  for n in "${instances[@]}"; do start_instance "$base/$n" || { cmd_stop "$base"; die "master for $n did not start; see $base/$n/master.log"; }; done
  local deadline=$((SECONDS + 20)) ok
  for n in "${instances[@]}"; do
    for p in "${IMAP[$n]}" "${SYNC[$n]}"; do
      ok=0
      while [ $SECONDS -lt $deadline ]; do
        if banner_ok "$p" "$n.$id.pair.test"; then ok=1; break; fi
        sleep 0.05
      done
      if [ $ok = 0 ]; then
        echo "--- $base/$n/master.log" >&2; tail -20 "$base/$n/master.log" >&2 || true
        grep "cyrusrepl-$id-$n" "$SINK_DIR/syslog.log" 2>/dev/null | tail -20 >&2 || true
        cmd_stop "$base"; die "$n did not answer on 127.0.0.1:$p"
      fi
    done
  done

  {
    echo "{"
    echo "  \"dir\": \"$base\", \"id\": \"$id\", \"deleteMode\": \"$DELETE_MODE\","
    echo "  \"namespace\": \"$NAMESPACE\", \"deletedPrefix\": \"$DELETED_PREFIX\","
    if [ "$TLS" = 1 ]; then echo "  \"tlsCA\": \"$base/tls/ca.pem\","; fi
    echo "  \"replUser\": \"repl\", \"replPassword\": \"$REPL_PASSWORD\","
    echo "  \"adminUser\": \"admin\", \"adminPassword\": \"$ADMIN_PASSWORD\", \"channel\": \"cyrusrepl\","
    echo "  \"syslogPrefix\": \"cyrusrepl-$id\","
    echo "  \"instances\": {"
    local first=1
    for n in "${instances[@]}"; do
      [ $first = 1 ] || echo ","
      first=0
      printf '    "%s": {"dir": "%s", "config": "%s", "configDir": "%s", "imap": "127.0.0.1:%s", "lmtp": "127.0.0.1:%s", "sync": "127.0.0.1:%s", "sieve": "127.0.0.1:%s", "servername": "%s.%s.pair.test"}' \
        "$n" "$base/$n" "$base/$n/imapd.conf" "$base/$n/conf" "${IMAP[$n]}" "${LMTP[$n]}" "${SYNC[$n]}" "${SIEVE[$n]}" "$n" "$id"
    done
    echo; echo "  }"; echo "}"
  } > "$base/pair.json"
  log "up in $((SECONDS - t0))s: $base (master imap 127.0.0.1:${IMAP[master]} sync 127.0.0.1:${SYNC[master]}; replica imap 127.0.0.1:${IMAP[replica]} sync 127.0.0.1:${SYNC[replica]})"
}

cmd_stop() {
  local base=$1 n id=""
  [ -d "$base" ] || return 0
  base=$(cd "$base" && pwd)
  local dirs=()
  for n in master replica replica2; do [ -d "$base/$n" ] && dirs+=("$base/$n"); done
  stop_instances "${dirs[@]}"
  [ -f "$base/pair.env" ] && id=$(sed -n 's/^PAIR_ID=//p' "$base/pair.env")
  [ -n "$id" ] && sink_unregister "$id"
  rm -f "$base/pair.env" "$base/pair.json"
  log "stopped $base"
}

cmd_status() {
  local base=$1 n rc=0
  for n in master replica replica2; do
    [ -d "$base/$n" ] || continue
    if [ -f "$base/$n/run/master.pid" ] && kill -0 "$(cat "$base/$n/run/master.pid")" 2>/dev/null; then
      echo "$n: running (pid $(cat "$base/$n/run/master.pid"))"
    else echo "$n: stopped"; rc=1; fi
  done
  return $rc
}

[ $# -ge 2 ] || die "usage: $0 start|stop|status DIR [options]"
case "$1" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop "$2" ;;
  status) cmd_status "$2" ;;
  *) die "unknown command $1" ;;
esac
