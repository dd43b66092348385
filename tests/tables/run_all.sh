#!/usr/bin/env bash
# Runs every client script here against one endpoint; stops at the first failing script.
# Usage: [SKIP=group,...] run_all.sh ENDPOINT_URL   (node deps: `npm ci` in ../node first)
set -euo pipefail
endpoint=${1:?usage: run_all.sh ENDPOINT_URL}
here=$(cd "$(dirname "$0")" && pwd)
for script in boto3_client.py boto3_resource.py aws_cli.sh node_v3.mjs node_v2.js; do
  case $script in
    *.py) runner=(python3) ;;
    *.sh) runner=(bash) ;;
    *) runner=(node --no-warnings) ;;
  esac
  printf '%-18s ' "$script"
  "${runner[@]}" "$here/$script" "$endpoint"
done
