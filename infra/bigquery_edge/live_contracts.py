"""verify's dry run of every contract (contracts/<service>/<query>.sql): BigQuery parses, resolves and
authorizes each query against the live dataset, as the stack names it (its suffix, in its project), and runs
nothing; a dry run processes no data and is not billed (REST reference, JobConfiguration.dryRun; "Estimate and
control costs": a dry run is free). So a live schema that drifted from the declaration, or a rule of BigQuery's
the offline check (infra/analysis/contracts.py) does not model, shows before the application hits it.
"""

from __future__ import annotations

import re
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from infra.analysis.contracts import check, sample_parameters, stack_sql
from infra.analysis.drift import Check, VerifyReport
from infra.bigquery_edge import live
from infra.model.catalog import Catalog
from infra.model.contracts import Contract
from infra.model.settings import Settings

CHECK = "dry run"


def query_parameters(contract: Contract) -> list[bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter]:
    """The contract's declared parameters, each with a sample value of its type."""
    parameters: list[bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter] = []
    for name, type_, value in sample_parameters(contract):
        sample: Any = value
        if type_.startswith("ARRAY<"):
            parameters.append(bigquery.ArrayQueryParameter(name, type_[6:-1], sample))
        else:
            parameters.append(bigquery.ScalarQueryParameter(name, type_, sample))
    return parameters


def dry_run(
    conn: live.Connection, catalog: Catalog, settings: Settings, contracts: list[Contract], report: VerifyReport
) -> list[Check]:
    """One check per contract: whether BigQuery takes it against the live dataset. A refusal (4xx) is the
    contract's failed check; a call that cannot be made at all stops verify (LiveError). A contract on a table
    that is not declared (`validate --contracts` names it) or that verify found missing (its own check fails)
    is not run."""
    missing = {c.subject for c in report.checks if c.name == "exists" and not c.ok}
    present = {
        t.key
        for t in catalog.tables()
        if not {f"dataset {settings.dataset_id(t.dataset)}", f"table {settings.dataset_id(t.dataset)}.{t.table_id}"}
        & missing
    }
    checks = []
    for contract in contracts:
        if not check(contract, catalog).tables <= present:
            continue
        subject = f"contract {contract.name}"
        config = bigquery.QueryJobConfig(
            dry_run=True, use_query_cache=False, query_parameters=query_parameters(contract)
        )
        with live.api_errors(conn):  # a call that cannot be made at all: nothing could be checked
            try:
                conn.client.query(stack_sql(contract, catalog, settings), job_config=config, **conn.call())
            except api_exceptions.ClientError as error:
                why = re.sub(r"^[A-Z]+ \S+: ", "", live.why_failed(conn, error))  # api_core's "METHOD URL: " first
                fix = f'fix {contract.file} or the live table (README, runbook "Change a column the applications use")'
                checks.append(Check(subject, CHECK, False, f"BigQuery refuses it: {why}; {fix}"))
                continue
        checks.append(Check(subject, CHECK, True, "BigQuery takes it against the live tables"))
    return checks
