#!/bin/bash
# A Slurm batch job that runs a program under dmtcp, checkpoints it when Slurm warns that the
# time limit is near, and has the job requeued; the requeued job restarts from the images.
#
#   sbatch --signal=B:USR1@120 --requeue --open-mode=append scripts/slurm/dmtcp-job.sh ./app args
#
# --signal=B:USR1@120 makes Slurm send SIGUSR1 to this batch shell 120 s before the limit;
# --requeue lets the job be queued again; --open-mode=append keeps one output file across runs.
# Each run starts its own coordinator on a free port on the node it lands on, so a requeued job
# may run on another node (the checkpoint folder must then be on a shared file system).
#
# Settings (environment): DMTCP (the dmtcp binary, default: dmtcp in PATH),
# DMTCP_CHECKPOINT_DIR (default: ./dmtcp-ckpt-$SLURM_JOB_ID), DMTCP_CKPT_SIGNAL (default USR1).
set -u
DMTCP=${DMTCP:-dmtcp}
JOB=${SLURM_JOB_ID:-local}
CKDIR=${DMTCP_CHECKPOINT_DIR:-$PWD/dmtcp-ckpt-$JOB}
SIG=${DMTCP_CKPT_SIGNAL:-USR1}
mkdir -p "$CKDIR"
export DMTCP_CHECKPOINT_DIR=$CKDIR

if [ $# -eq 0 ] && ! ls "$CKDIR"/ckpt_*.dmtcp >/dev/null 2>&1; then
  echo "dmtcp-job: usage: dmtcp-job.sh PROGRAM [ARGS...]" >&2
  exit 1
fi

# A coordinator of this run's own, on a free port, gone when the computation ends.
rm -f "$CKDIR/port"
"$DMTCP" coordinator --daemon --exit-on-last --coord-port 0 --port-file "$CKDIR/port" \
  --ckptdir "$CKDIR" --coord-logfile "$CKDIR/coordinator.log" || exit 1
DMTCP_COORD_PORT=$(cat "$CKDIR/port")
export DMTCP_COORD_PORT

checkpoint_and_requeue() {
  echo "dmtcp-job: time limit near: checkpointing into $CKDIR" >&2
  if "$DMTCP" command --bcheckpoint; then
    # Only now the images are on disk: queue the job again, then stop the computation.
    if [ "$JOB" != local ] && command -v scontrol >/dev/null; then
      scontrol requeue "$JOB"
    fi
    "$DMTCP" command --kill >/dev/null
    wait
    exit 0
  fi
  echo "dmtcp-job: the checkpoint failed; the job goes on until its limit" >&2
}
trap checkpoint_and_requeue "$SIG"

if ls "$CKDIR"/ckpt_*.dmtcp >/dev/null 2>&1; then
  echo "dmtcp-job: restart ${SLURM_RESTART_COUNT:-?} from $CKDIR" >&2
  "$DMTCP" restart --join-coordinator "$CKDIR"/ckpt_*.dmtcp &
else
  "$DMTCP" launch --join-coordinator "$@" &
fi
child=$!
# `wait` returns early when the signal comes (the trap then runs); wait again until the
# computation is really over.
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break
done
# The computation ended by itself: its images are of no further use.
rm -f "$CKDIR"/ckpt_*.dmtcp "$CKDIR"/dmtcp_restart_script*.sh
exit "$status"
