"""Entry point of `pulumi up` (Pulumi.yaml: main: infra/)."""

import sys
from pathlib import Path

# Pulumi runs this file as a script, not as part of the package: put the repo root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.pulumi_edge.program import run

run()
