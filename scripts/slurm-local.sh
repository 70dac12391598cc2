#!/usr/bin/env bash
# slurm-local.sh: run a throwaway single-node Slurm cluster on this machine
# (Debian 12, root, no systemd), for the Slurm executor's end-to-end tests.
# Recipe: shared/notes/slurm-single-node.md (Debian's Slurm 22.05 + munge).
#
#   slurm-local.sh up [STATE_DIR]   install if needed, start all, wait for idle
#                                   (STATE_DIR defaults to /tmp/mtl-slurm)
#   slurm-local.sh down             stop slurmctld, slurmd and munged
#   slurm-local.sh status           show sinfo and which daemons run
set -euo pipefail

CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)
TIMEOUT=60

die() { echo "slurm-local: $*" >&2; exit 1; }
# Not zombies: a killed daemon's zombie can linger when PID 1 reaps slowly.
running() { pgrep -x -r D,R,S "$1" >/dev/null; }
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null || true; }
# After a restart slurmctld restores the node as idle before slurmd registers.
slurmd_registered() { [[ $(scontrol -o show node "$HOST" 2>/dev/null) == *SlurmdStartTime=[0-9]* ]]; }
conf_value() { if [[ -f $CONF ]]; then sed -n "s/^$1=//p" "$CONF"; fi; }

# Wait until none of the named processes run; fail after $TIMEOUT s.
wait_gone() {
  local i
  for ((i = 0; i < TIMEOUT * 2; i++)); do
    local left=()
    for p in "$@"; do running "$p" && left+=("$p"); done
    ((${#left[@]} == 0)) && return 0
    sleep 0.5
  done
  die "still running after ${TIMEOUT}s: ${left[*]}"
}

write_conf() {
  local s=$1 mem
  # Half the RAM: below what slurmd detects, so the node is never drained
  # for "Low RealMemory" (memory is not a consumable resource with CR_Core).
  mem=$(awk '/^MemTotal:/ { print int($2 / 1024 / 2) }' /proc/meminfo)
  mkdir -p "$(dirname "$CONF")"
  cat > "$CONF.new" <<CONF
# Written by scripts/slurm-local.sh
ClusterName=ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/log/slurmctld.log
SlurmdLogFile=$s/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$s/log/jobcomp.txt
MinJobAge=3600
NodeName=$HOST CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  if cmp -s "$CONF.new" "$CONF"; then
    rm "$CONF.new"
  elif running slurmctld || running slurmd; then
    rm "$CONF.new"
    die "Slurm runs with another $CONF (other STATE_DIR?); run '$0 down' first"
  else
    mv "$CONF.new" "$CONF"
  fi
}

up() {
  local s=${1:-/tmp/mtl-slurm}
  mkdir -p "$s" && s=$(cd "$s" && pwd)

  if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null ||
     ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm-local: installing slurm and munge packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null
  fi

  if ! munge_ok; then
    install -d -o munge -g munge -m 0755 /run/munge
    # --force: start even if a killed munged left its socket behind.
    runuser -u munge -- /usr/sbin/munged --force
    munge_ok || die "munged started but 'munge -n | unmunge' fails"
  fi

  write_conf "$s"
  mkdir -p "$s/state" "$s/spool" "$s/log"
  running slurmctld || slurmctld
  running slurmd || slurmd

  local st='' deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    # Without slurmctld each sinfo call hangs ~9 s, so fail fast instead.
    if ! running slurmctld || ! running slurmd; then
      st="slurmctld or slurmd exited"; break
    fi
    st=$(node_state)
    case $st in
      idle) if slurmd_registered; then
          echo "slurm up: node $HOST idle, state in $s"; return 0
        fi ;;
      # Left drained/down by an earlier run: put it back in service.
      drain* | down* | fail*) scontrol update nodename="$HOST" state=resume || true ;;
    esac
    sleep 0.5
  done
  echo "slurm-local: node $HOST not idle: ${st:-no answer} (waited up to ${TIMEOUT}s)" >&2
  running slurmctld && { sinfo -R >&2 || true; }
  for f in "$s/log/slurmctld.log" "$s/log/slurmd.log"; do
    [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

down() {
  local pid
  if running slurmctld; then
    scontrol shutdown >/dev/null 2>&1 || true   # stops slurmd too
  else
    pid=$(conf_value SlurmdPidFile)
    if [[ -n $pid && -f $pid ]]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
  fi
  if [[ -f /run/munge/munged.pid ]]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
  fi
  wait_gone slurmctld slurmd munged
  echo "slurm down"
}

status() {
  if running slurmctld; then sinfo || true; else echo "sinfo: slurmctld not running"; fi
  local p
  for p in munged slurmctld slurmd; do
    if running "$p"; then echo "$p: running"; else echo "$p: stopped"; fi
  done
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [STATE_DIR] | down | status" >&2; exit 2 ;;
esac
