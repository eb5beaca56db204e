"""Entry point the Pulumi CLI runs for `--policy-pack policies`: each rule of validators.py as a policy.

Constructing PolicyPack starts the analyzer's gRPC server and blocks, so only the CLI runs this file;
tests call the validators directly.
"""

import sys
from pathlib import Path

# Pulumi runs this directory as a script, not as a package: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.validators import RULES, PolicyRule


def as_policy(rule: PolicyRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(name=rule.name, description=rule.description, validate=validate)


# Mandatory unless the stack's policies/config/<stack>.json lowers it, so a missing config fails safe.
PolicyPack(
    name="tenant-bigquery-guardrails",
    policies=[as_policy(rule) for rule in RULES],
    enforcement_level=EnforcementLevel.MANDATORY,
)
