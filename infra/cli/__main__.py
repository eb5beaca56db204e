"""`python -m infra.cli`."""

import gc

from infra.cli.main import main

# What is loaded by now lives as long as the process: the cycle collector need not walk it again, nor at
# exit (a tenth of `diff --old/--new`, scripts/benchmark.py).
gc.freeze()
main()
