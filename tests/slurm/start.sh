#!/bin/bash
# Starts a real single-node Slurm (munged, slurmctld, slurmd) for the sweep tests, following
# /work/shared/notes/slurm-single-node.md. Needs root and Debian's slurm-wlm + munge packages.
#   eval "$(tests/slurm/start.sh /tmp/statex-slurm)"    # prints export lines
#   ... run tests (they read STATEX_SLURM_CONF) ...
#   tests/slurm/stop.sh /tmp/statex-slurm
# Installs the packages with apt-get when they are missing (set STATEX_SLURM_NO_INSTALL=1 to refuse).
set -euo pipefail
DIR=${1:?usage: start.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
log() { echo "slurm-start: $*" >&2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [ "${STATEX_SLURM_NO_INSTALL:-0}" = 1 ]; then log "slurm-wlm/munge not installed"; exit 1; fi
  log "installing slurm-wlm and munge"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >&2
fi

# --- munge ---
for d in /etc/munge /run/munge /var/lib/munge /var/log/munge; do mkdir -p "$d"; chown munge:munge "$d"; done
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  # munged refuses to run as root; run it as the munge user.
  if command -v runuser >/dev/null; then runuser -u munge -- munged --force; else munged --force; fi
  touch "$DIR/munged.started"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null || { log "munge does not work"; exit 1; }

# --- slurm.conf ---
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
CTLD_PORT=${STATEX_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${STATEX_SLURMD_PORT:-16818}
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
cat > "$DIR/slurm.conf" <<CONF
ClusterName=statextest
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits cred_expire seconds before it may start again (default 120 s); the
# requeue test (tests/test_sweep.cpp) need not wait that long.
AuthInfo=cred_expire=10
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MinJobAge=3600
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"

# --- daemons ---
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^idle'; then break; fi
  sleep 0.5
done
if ! sinfo -h -o %T 2>/dev/null | grep -qE '^idle'; then
  log "node did not become idle; sinfo: $(sinfo 2>&1 | tr '\n' ' ')"
  tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
  exit 1
fi
log "slurm up on $HOST ($CPUS CPUs), conf $SLURM_CONF"
echo "export SLURM_CONF=$SLURM_CONF"
echo "export STATEX_SLURM_CONF=$SLURM_CONF"
