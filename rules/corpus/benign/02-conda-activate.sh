#!/bin/bash
# expect: pass
# A conda-style activation wrapper: environment set up by a shell, then the job.
export CONDA_PREFIX="$AF_SCRATCH/env" CONDA_DEFAULT_ENV=ml
export PATH="$CONDA_PREFIX/bin:$PATH"
. /dev/null
python3 -c 'import os; open(os.environ["AF_WEIGHTS"], "rb").read(); print("trained")'
