#!/usr/bin/env bash
# A single-node SLURM on this machine (Debian, run as root, no systemd), for the
# batch tests (tests/test_batch.py): slurmctld and slurmd on localhost, munge for
# authentication.  Idempotent: a SLURM that already answers is left as it is.
# Usage: ci/setup_slurm.sh [workdir]   (default /tmp/jwst_reffiles_slurm)
set -euo pipefail
work="${1:-/tmp/jwst_reffiles_slurm}"
if command -v sinfo >/dev/null 2>&1 && timeout 10 sinfo -h >/dev/null 2>&1; then
    echo "setup_slurm: SLURM already answers"; sinfo; exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "setup_slurm: needs root (apt-get, daemons); the batch tests will be skipped" >&2
    exit 0
fi
if ! command -v slurmctld >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
host="$(hostname -s)"
cpus="$(nproc)"
mem_mb="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))"
mkdir -p "$work/jobs" /etc/slurm /var/spool/slurmd /var/spool/slurmctld /run/munge \
         /var/log/munge /var/lib/munge
cat > /etc/slurm/slurm.conf <<CONF
# single-node SLURM written by jwst_reffiles' ci/setup_slurm.sh
ClusterName=jwstreffiles
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=${work}/slurmctld.log
SlurmdLogFile=${work}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MinJobAge=300
KillWait=10
NodeName=${host} CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
[ -f /etc/munge/munge.key ] || /usr/sbin/mungekey --create 2>/dev/null \
    || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge /etc/munge/munge.key
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
for _ in $(seq 1 30); do
    if timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; then
        echo "setup_slurm: SLURM up"; sinfo; exit 0
    fi
    sleep 1
done
echo "setup_slurm: SLURM did not come up (see $work/slurmctld.log, $work/slurmd.log)" >&2
sinfo || true
exit 0
