#!/usr/bin/env bash
# A three-node RabbitMQ cluster of the test tier's own on this machine, beside (never touching) the machine's
# default node rabbit@… on 5672, its epmd, its cookie file or its config.
#
#   scripts/cluster.sh start | stop | status | urls
#   scripts/cluster.sh kill N | start-node N | stop-app N | start-app N | partition N | heal N | ctl N ARGS…
#
# Why network namespaces: a partition needs something that cuts the brokers apart while clients still reach
# both sides, and this machine has no iptables (and tc on the shared loopback would touch everyone's traffic).
# Nodes gwc1 and gwc2 run in namespace gwc-a, gwc3 in gwc-b; one veth link between the two carries Erlang
# distribution (gwc-ab/gwc-ba), and one veth per namespace links it to the host for AMQP clients. Taking the
# a-b link down partitions gwc3 from the majority while the host still reaches it: exactly what a quorum
# queue and the gateway's failover must survive. Each namespace has its own epmd, started by its first node.
#
#   node  Erlang name          namespace  AMQP (from the host)   distribution port
#   1     gwc1@10.213.1.1      gwc-a      10.213.2.2:5701         25701
#   2     gwc2@10.213.1.1      gwc-a      10.213.2.2:5702         25702
#   3     gwc3@10.213.1.2      gwc-b      10.213.3.2:5703         25703
#
# State under $GATEWAY_CLUSTER_DIR (default /tmp/gateway-cluster): per node mnesia/, log/, pid, conf; a copy of
# the system Erlang cookie in home/. `stop` kills only processes inside the two namespaces it made (every one of
# them is ours: the nodes and their epmd), deletes the namespaces and links, and removes the directory.
# Needs root (ip netns); runs the Debian package's scripts from /usr/lib/rabbitmq/bin as root.
set -euo pipefail

DIR="${GATEWAY_CLUSTER_DIR:-/tmp/gateway-cluster}"
RMQ=/usr/lib/rabbitmq/bin
COOKIE_SRC="${GATEWAY_CLUSTER_COOKIE:-/var/lib/rabbitmq/.erlang.cookie}"
NS_A=gwc-a
NS_B=gwc-b

say() { printf '\033[1m[cluster]\033[0m %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

ns_of() { case "$1" in 1|2) echo "$NS_A" ;; 3) echo "$NS_B" ;; *) die "no node $1 (1, 2 or 3)" ;; esac; }
host_of() { case "$1" in 1|2) echo 10.213.1.1 ;; 3) echo 10.213.1.2 ;; esac; }
client_ip_of() { case "$1" in 1|2) echo 10.213.2.2 ;; 3) echo 10.213.3.2 ;; esac; }
name_of() { echo "gwc$1@$(host_of "$1")"; }

node_env() {
  local n=$1 d="$DIR/gwc$1"
  echo env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$DIR/home" LANG=C.UTF-8 \
    RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" RABBITMQ_USE_LONGNAME=true \
    RABBITMQ_NODENAME="$(name_of "$n")" RABBITMQ_NODE_PORT="570$n" RABBITMQ_DIST_PORT="2570$n" \
    RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" RABBITMQ_PID_FILE="$d/pid" \
    RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" RABBITMQ_PLUGINS_EXPAND_DIR="$d/plugins-expand"
}

in_ns() { local n=$1; shift; ip netns exec "$(ns_of "$n")" $(node_env "$n") "$@"; }
ctl() { local n=$1; shift; in_ns "$n" "$RMQ/rabbitmqctl" -q -l -n "$(name_of "$n")" "$@"; }

link() {  # link NAME_HOST_SIDE NS NAME_NS_SIDE HOST_IP NS_IP
  ip link add "$1" type veth peer name "$3"
  ip link set "$3" netns "$2"
  ip addr add "$4/24" dev "$1"
  ip link set "$1" up
  ip netns exec "$2" ip addr add "$5/24" dev "$3"
  ip netns exec "$2" ip link set "$3" up
}

network_up() {
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip netns exec "$NS_A" ip link set lo up
  ip netns exec "$NS_B" ip link set lo up
  link gwc-ha "$NS_A" gwc-ah 10.213.2.1 10.213.2.2
  link gwc-hb "$NS_B" gwc-bh 10.213.3.1 10.213.3.2
  ip link add gwc-ab netns "$NS_A" type veth peer name gwc-ba netns "$NS_B"
  ip netns exec "$NS_A" ip addr add 10.213.1.1/24 dev gwc-ab
  ip netns exec "$NS_B" ip addr add 10.213.1.2/24 dev gwc-ba
  ip netns exec "$NS_A" ip link set gwc-ab up
  ip netns exec "$NS_B" ip link set gwc-ba up
}

pid_of() { cat "$DIR/gwc$1/pid" 2>/dev/null || true; }

start_node() {
  local n=$1
  mkdir -p "$DIR/gwc$n/log" "$DIR/gwc$n/mnesia"
  say "starting $(name_of "$n") (AMQP $(client_ip_of "$n"):570$n)"
  in_ns "$n" "$RMQ/rabbitmq-server" -detached >"$DIR/gwc$n/log/startup.out" 2>&1 \
    || die "gwc$n did not start; see $DIR/gwc$n/log/"
}

await_node() {
  local n=$1
  for _ in $(seq 1 120); do
    if ctl "$n" await_startup --timeout 5 >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "gwc$n did not finish starting within 120 s; see $DIR/gwc$n/log/"
}

cmd_start() {
  [ "$(id -u)" = 0 ] || die "needs root (ip netns, veth links)"
  if ip netns list | grep -qw "$NS_A"; then die "already running (scripts/cluster.sh stop first)"; fi
  [ -r "$COOKIE_SRC" ] || die "no Erlang cookie at $COOKIE_SRC (set GATEWAY_CLUSTER_COOKIE)"
  rm -rf "$DIR"
  mkdir -p "$DIR/home"
  install -m 400 "$COOKIE_SRC" "$DIR/home/.erlang.cookie"
  : >"$DIR/rabbitmq-env.conf"
  echo "[]." >"$DIR/enabled_plugins"
  echo "[]." >"$DIR/advanced.config"
  # guest may log in from the host (the links are private to this machine); a short net_ticktime so a lost
  # node is noticed in seconds, not a minute; pause_minority so a partitioned node stops serving clients
  cat >"$DIR/rabbitmq.conf" <<'CONF'
loopback_users = none
net_ticktime = 10
cluster_partition_handling = pause_minority
log.file.level = info
CONF
  network_up
  for n in 1 2 3; do start_node "$n"; done
  for n in 1 2 3; do await_node "$n"; done
  for n in 2 3; do  # 3.10's CLI prints harmless "tracked connection table" errors while joining: kept in join.out
    say "gwc$n joins $(name_of 1)"
    { ctl "$n" stop_app && ctl "$n" join_cluster "$(name_of 1)" && ctl "$n" start_app; } \
      >>"$DIR/gwc$n/log/join.out" 2>&1 || die "gwc$n could not join; see $DIR/gwc$n/log/join.out"
  done
  ctl 1 await_online_nodes 3 --timeout 60 >/dev/null 2>&1 || true
  cmd_status
}

cmd_stop() {
  local ns pids
  for ns in "$NS_A" "$NS_B"; do
    if ip netns list | grep -qw "$ns"; then
      pids=$(ip netns pids "$ns" || true)
      if [ -n "$pids" ]; then
        say "stopping what runs in $ns (pids $(echo $pids))"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for _ in $(seq 1 30); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.5; done
        pids=$(ip netns pids "$ns" || true)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
      fi
      ip netns del "$ns"
    fi
  done
  ip link del gwc-ha 2>/dev/null || true
  ip link del gwc-hb 2>/dev/null || true
  rm -rf "$DIR"
  say "stopped; $DIR removed"
}

cmd_status() {
  ip netns list | grep -qw "$NS_A" || { say "not running"; return 1; }
  ctl 1 cluster_status --formatter json | tr -d '\n' | sed 's/.*"running_nodes":\(\[[^]]*\]\).*/running: \1/'
  echo
}

cmd_urls() {
  local vhost="${1:-%2F}"
  echo "amqp://guest:guest@10.213.2.2:5701/$vhost;amqp://guest:guest@10.213.2.2:5702/$vhost;amqp://guest:guest@10.213.3.2:5703/$vhost"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  urls) cmd_urls "${2:-}" ;;
  pid) pid_of "$2" ;;
  kill) pid=$(pid_of "$2"); [ -n "$pid" ] || die "no pid file for gwc$2"; kill -KILL "$pid"; say "SIGKILL gwc$2 ($pid)" ;;
  start-node) start_node "$2"; await_node "$2" ;;
  stop-app) ctl "$2" stop_app ;;
  start-app) ctl "$2" start_app; await_node "$2" ;;
  partition) [ "$2" = 3 ] || die "only gwc3 can be cut off (it is alone in its namespace)"
             ip netns exec "$NS_A" ip link set gwc-ab down; say "gwc3 partitioned from gwc1, gwc2" ;;
  heal) ip netns exec "$NS_A" ip link set gwc-ab up; say "gwc3 linked again" ;;
  ctl) n=$2; shift 2; ctl "$n" "$@" ;;
  *) die "usage: $0 start|stop|status|urls [VHOST]|pid N|kill N|start-node N|stop-app N|start-app N|partition 3|heal 3|ctl N ARGS…" ;;
esac
