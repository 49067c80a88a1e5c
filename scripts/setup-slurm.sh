#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for bookgen's `slurm` tests and for trying
# `snakemake --profile profiles/slurm` (see the README's "On a cluster").
#   scripts/setup-slurm.sh        install (Debian packages) if needed, configure, start; idempotent
#   scripts/setup-slurm.sh stop   stop the daemons (munged, slurmctld, slurmd)
# Runs as root on Debian/Ubuntu without systemd (containers, CI machines). It advertises
# BOOKGEN_SLURM_CPUS CPUs (default 8) whatever the machine has: section jobs wait on the API,
# not on the CPU, so several 1-CPU jobs share a core.
set -euo pipefail

CPUS="${BOOKGEN_SLURM_CPUS:-8}"
CONF_DIR=/etc/slurm
RUN=/run/slurm
LOGS=/var/log/slurm

die() { echo "setup-slurm: $*" >&2; exit 1; }

stop_pidfile() {  # stop the daemon whose pid is in $1, if it runs
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}

if [[ ${1:-} == stop ]]; then
    stop_pidfile $RUN/slurmd.pid
    stop_pidfile $RUN/slurmctld.pid
    stop_pidfile /run/munge/munged.pid
    echo "setup-slurm: stopped"
    exit 0
fi
[[ -z ${1:-} ]] || die "usage: $0 [stop]"
[[ $(id -u) == 0 ]] || die "run as root (it installs packages and starts daemons)"

# 1. Packages (8 packages, a few MB; skipped when present). Installing starts no daemon here.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# 2. The host name must resolve: it is the node's name.
HOST=$(hostname -s)
getent hosts "$HOST" >/dev/null || echo "127.0.1.1 $HOST" >>/etc/hosts

# 3. munge: a key, its run directory (no systemd makes it), the daemon as user munge.
if [[ ! -s /etc/munge/munge.key ]]; then
    /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged did not start (see /var/log/munge/munged.log)"
fi

# 4. slurm.conf: no cgroups, no accounting database; squeue is the status command, so finished
#    jobs must stay visible to it for a while (MinJobAge, seconds).
install -d -o slurm -g slurm /var/spool/slurmctld $LOGS $RUN
install -d /var/spool/slurmd $CONF_DIR
MEM=$(free -m | awk '/^Mem:/ {print int($4 * 0.9)}')
CONF=$(cat <<CONF
# Written by bookgen's scripts/setup-slurm.sh: a one-node cluster for tests.
ClusterName=bookgen
SlurmctldHost=$HOST
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
MailProg=/bin/true
SlurmdParameters=config_overrides
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
)
# Restart the daemons only when the node's description changed (slurm.conf read at start).
# RealMemory follows free memory, so compare without it.
strip() { sed 's/ RealMemory=[0-9]*//'; }
changed=0
if [[ ! -f $CONF_DIR/slurm.conf ]] || [[ $(strip <$CONF_DIR/slurm.conf) != $(strip <<<"$CONF") ]]; then
    printf '%s\n' "$CONF" >$CONF_DIR/slurm.conf
    changed=1
fi

running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ((changed)); then
    stop_pidfile $RUN/slurmd.pid
    stop_pidfile $RUN/slurmctld.pid
fi
running $RUN/slurmctld.pid || /usr/sbin/slurmctld
running $RUN/slurmd.pid || /usr/sbin/slurmd

# 5. Ready when the node is idle (or already running jobs).
for _ in $(seq 100); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
    [[ $state == idle || $state == mix || $state == alloc ]] && break
    [[ $state == down* || $state == drain* ]] && scontrol update nodename="$HOST" state=resume 2>/dev/null || true
    sleep 0.2
done
[[ $state == idle || $state == mix || $state == alloc ]] \
    || die "the node is '$state', not idle (see $LOGS/slurmctld.log and $LOGS/slurmd.log)"
echo "setup-slurm: one-node SLURM up: node $HOST, $CPUS CPUs, partition debug (stop: $0 stop)"
