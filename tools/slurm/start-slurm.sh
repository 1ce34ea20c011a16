#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for trying the SLURM profile (profiles/slurm)
# and for tests/test_slurm.py, which calls it when `sinfo` does not answer. Debian/Ubuntu, as root.
# It apt-installs slurmctld, slurmd, slurm-client, munge (+ slurmdbd and MariaDB for accounting, so
# `sacct` works as snakemake-executor-plugin-slurm expects), writes configs under DIR, starts the
# daemons and waits until the node is idle (cold ~15 s, warm ~3 s). Idempotent: run it again and it
# only checks. Stop with tools/slurm/stop-slurm.sh DIR. Not for production clusters.
# usage: start-slurm.sh [DIR]   (default /tmp/slurm-local)
# env:   ACCOUNTING=dbd|none (default dbd: slurmdbd+MariaDB so sacct works; with none the profile
#          needs `slurm-status-command: squeue`)
#        FAKE_GPUS=N (default 1; 0 = no GRES): GPU GRES backed by /dev/null, so `--gpus=1` schedules
#          and sets CUDA_VISIBLE_DEVICES although torch sees no CUDA device
#        DB_PORT (default 3307)
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "start-slurm.sh: needs root (installs packages, starts daemons)" >&2; exit 2; }
for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "start-slurm.sh: needs $tool (Debian/Ubuntu)" >&2; exit 2; }
done
D=$(mkdir -p "${1:-/tmp/slurm-local}" && cd "${1:-/tmp/slurm-local}" && pwd)
ACCOUNTING=${ACCOUNTING:-dbd}; FAKE_GPUS=${FAKE_GPUS:-1}; DB_PORT=${DB_PORT:-3307}
H=$(hostname -s); NCPU=$(nproc)
MEM=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 9 / 10 ))
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
exec 9>"$D/.start.lock"; flock -w 600 9   # one start at a time (daemons get 9>&- so they do not hold it)

# 1. packages
PKGS="slurmctld slurmd slurm-client munge"
[ "$ACCOUNTING" = dbd ] && PKGS="$PKGS slurmdbd mariadb-server"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  apt-get update -qq 9>&-
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS >/dev/null 9>&-
fi
mkdir -p "$D"/{etc,state/ctld,state/d,log,dev} /etc/slurm

# 2. configs
GRES_NODE=""; : > "$D/etc/gres.conf"
if [ "$FAKE_GPUS" -gt 0 ]; then   # fake GPUs: symlinks to /dev/null (a char device; no mknod needed)
  GRES_NODE="Gres=gpu:$FAKE_GPUS"
  for i in $(seq 0 $((FAKE_GPUS-1))); do
    ln -sfn /dev/null "$D/dev/nvidia$i"
    echo "NodeName=$H Name=gpu File=$D/dev/nvidia$i" >> "$D/etc/gres.conf"
  done
fi
if [ "$ACCOUNTING" = dbd ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt"
fi
cat > "$D/etc/slurm.conf.new" <<EOF
ClusterName=local
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=600
StateSaveLocation=$D/state/ctld
SlurmdSpoolDir=$D/state/d
SlurmctldPidFile=$D/state/slurmctld.pid
SlurmdPidFile=$D/state/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
$ACCT
GresTypes=gpu
NodeName=$H NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM $GRES_NODE State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
if cmp -s "$D/etc/slurm.conf.new" "$D/etc/slurm.conf"; then rm "$D/etc/slurm.conf.new"
else mv "$D/etc/slurm.conf.new" "$D/etc/slurm.conf"
  alive "$D/state/slurmctld.pid" && echo "WARNING: slurm.conf changed while running; run stop-slurm.sh and start again"
fi
cat > "$D/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/state/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
chmod 600 "$D/etc/slurmdbd.conf"
# Default path is needed: snakemake's slurm plugin drops SLURM_* env vars (incl. SLURM_CONF) in jobs
for f in slurm.conf gres.conf slurmdbd.conf; do
  [ -e /etc/slurm/$f ] && [ ! -L /etc/slurm/$f ] && mv /etc/slurm/$f /etc/slurm/$f.orig
  ln -sfn "$D/etc/$f" /etc/slurm/$f
done

# 3. munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || mungekey -c -k /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged --force 9>&-
  for i in $(seq 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
  cp /run/munge/munged.pid "$D/state/munged.pid"   # marks: started by us
fi

# 4. MariaDB + slurmdbd
if [ "$ACCOUNTING" = dbd ]; then
  S="$D/db/mysqld.sock"
  if [ ! -d "$D/db/data/mysql" ]; then
    install -d -o mysql -g mysql "$D/db"
    mariadb-install-db --user=mysql --datadir="$D/db/data" >"$D/log/mariadb-install.log" 2>&1
  fi
  if ! mariadb-admin --socket="$S" ping >/dev/null 2>&1; then
    setsid nohup mariadbd --no-defaults --user=mysql --datadir="$D/db/data" --socket="$S" \
      --pid-file="$D/db/mysqld.pid" --bind-address=127.0.0.1 --port="$DB_PORT" \
      --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 \
      --log-error="$D/log/mariadb.log" >/dev/null 2>&1 < /dev/null 9>&- &
    for i in $(seq 60); do mariadb-admin --socket="$S" ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  mariadb --socket="$S" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  alive "$D/state/slurmdbd.pid" || slurmdbd 9>&-
  for i in $(seq 60); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.5; done
fi

# 5. slurmctld + slurmd, wait for idle node
alive "$D/state/slurmctld.pid" || slurmctld 9>&-
alive "$D/state/slurmd.pid" || slurmd 9>&-
for i in $(seq 120); do
  st=$(sinfo -h -n "$H" -o %T 2>/dev/null || true)
  case "$st" in idle|mixed|allocated) break ;;
    drain*|down*) scontrol update nodename="$H" state=resume 2>/dev/null || true ;; esac
  sleep 0.5
done
sinfo -N -o '%N %T %c %m %G'
[[ "$st" =~ ^(idle|mixed|allocated)$ ]] || { echo "node not ready ($st); see $D/log" >&2; exit 1; }
echo "SLURM up (config $D/etc, logs $D/log, accounting=$ACCOUNTING)."
[ "$ACCOUNTING" = none ] && echo "Snakemake profile needs: slurm-status-command: squeue"
echo "Stop with: $(dirname "$(readlink -f "$0")")/stop-slurm.sh $D"
