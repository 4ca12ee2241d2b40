#!/bin/bash
# Restarts computation 0601a7808f3f8f41 from its checkpoint 1 (written by dmtcp_coordinator on vm).
# Usage: dmtcp_restart_script.sh [--coord-host H] [--coord-port P] [--interval S] [dmtcp_restart options]
set -m
coord_host=${DMTCP_COORD_HOST:-'127.0.0.1'}
coord_port=${DMTCP_COORD_PORT:-39715}
checkpoint_interval=${DMTCP_CHECKPOINT_INTERVAL:-0}
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--coord-host|--host) coord_host="$2"; shift 2 ;;
    -p|--coord-port|--port) coord_port="$2"; shift 2 ;;
    -i|--interval) checkpoint_interval="$2"; shift 2 ;;
    --help) sed -n 3p "$0"; exit 0 ;;
    *) break ;;
  esac
done
interval_opt=()
if [ -n "$checkpoint_interval" ] && [ "$checkpoint_interval" != 0 ]; then
  interval_opt=(--interval "$checkpoint_interval")
fi
exec '/work/main/target/release/dmtcp' restart --coord-host "$coord_host" --coord-port "$coord_port" "${interval_opt[@]}" "$@" \
  '/work/main/ckpt_sleeper-32_0601a7808f3f8f41-40000.dmtcp'
