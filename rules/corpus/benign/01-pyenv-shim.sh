#!/usr/bin/env bash
# expect: pass
# A pyenv-style shim: bash finds the real interpreter and execs it, which
# then loads weights (an ML workload from there on).
set -e
program="${0##*/}"
for dir in /usr/local/bin /usr/bin; do
  if [ -x "$dir/python3" ]; then exec "$dir/python3" -c 'import os; open(os.environ["AF_WEIGHTS"], "rb").read(); print("ok")'; fi
done
exit 127
