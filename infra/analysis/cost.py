"""What the queries of a migration cost on demand, from BigQuery's dry runs, and the cap on one run. Pure.

BigQuery rules relied on:
- A dry run (jobs.insert with configuration.dryRun) runs nothing and reports the bytes the query would process:
  REST reference, JobStatistics2.totalBytesProcessed ("If this query was a dry run, this is the number of bytes
  that would be processed if the query were run"); absent, the bytes are unknown, never 0.
- An INSERT is billed for what it reads, q: "the sum of bytes processed by the DML statement itself, including
  any columns referenced in tables scanned" (DML reference, "On-demand query size calculation").
- On-demand pricing (https://cloud.google.com/bigquery/pricing, "On-demand compute pricing"): a price per TiB,
  6.25 USD in the US multi-region (the default of tenant-bigquery:onDemandPricePerTib); bytes are rounded up to
  the MB, with a minimum of 10 MB per table referenced and 10 MB per query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MIB = 2**20
TIB = 2**40
MINIMUM_BYTES = 10 * MIB  # billed units are binary: 10 MB is 10 485 760 bytes
PRICE_SETTING = "tenant-bigquery:onDemandPricePerTib"
CAP_SETTING = "tenant-bigquery:migrationMaxBytes"
_INSERT_SELECT = re.compile(r"INSERT INTO `[^`]+` \([^)]*\)\s*(SELECT\b.*)\Z", re.DOTALL)


def billed(processed: int, tables: int) -> int:
    """The bytes BigQuery bills for a query that processes `processed` bytes of `tables` tables. A query that
    processes nothing (DDL, a COUNT(*) read from metadata) is counted as nothing: its dry run says so."""
    if processed == 0:
        return 0
    rounded = -(-processed // MIB) * MIB
    return max(rounded, MINIMUM_BYTES * max(tables, 1))


def priced_as(sql: str, copy: str | None, original: str, frozen_suffix: str) -> tuple[str, str]:
    """The statement to dry-run for `sql`, and why. A statement on the rebuild's copy cannot be dry-run before
    the steps that create it ran: an INSERT ... SELECT is priced by its SELECT (what it reads), any other by the
    same statement on the original, whose rows the copy holds; the frozen original (the copy's name and
    `frozen_suffix`) is the original renamed."""
    if copy is None:
        return sql, "dry run"
    frozen = f"`{copy}{frozen_suffix}`"
    renamed = frozen in sql  # the original under the name the freeze gives it: the same rows
    sql = sql.replace(frozen, f"`{original}`")
    if f"`{copy}`" not in sql:
        return sql, "dry run on the original, which the freeze renames" if renamed else "dry run"
    insert = _INSERT_SELECT.match(sql)
    if insert is not None:
        return insert.group(1), "dry run of its SELECT: an INSERT is billed for what it reads"
    copy_name, original_name = copy.rsplit(".", 1)[1], original.rsplit(".", 1)[1]
    swapped = sql.replace(f"`{original_name}`", f"`{copy_name}`").replace(f"`{copy}`", f"`{original}`")
    return swapped, "dry run on the original, whose rows the copy holds: the copy exists only after the steps before"


@dataclass(frozen=True)
class Query:
    """One query of a plan, priced by a dry run."""

    what: str  # "step N" or "data checks"
    statement: str  # its first line
    bytes_processed: int | None  # None: unknown
    tables: int = 0  # tables the dry run reports as referenced
    basis: str = "dry run"
    unknown: str = ""  # why the bytes are unknown

    @property
    def bytes_billed(self) -> int | None:
        return None if self.bytes_processed is None else billed(self.bytes_processed, self.tables)

    def to_json(self, price: float) -> dict[str, Any]:
        billed_bytes = self.bytes_billed
        return {
            "what": self.what,
            "statement": self.statement,
            "basis": self.basis,
            "bytes_processed": self.bytes_processed,
            "bytes_billed": billed_bytes,
            "usd": None if billed_bytes is None else usd(billed_bytes, price),
            "unknown": self.unknown or None,
        }


@dataclass(frozen=True)
class TableCost:
    queries: tuple[Query, ...]
    price: float  # USD per TiB

    @property
    def unknown(self) -> tuple[Query, ...]:
        return tuple(q for q in self.queries if q.bytes_processed is None)

    @property
    def known_billed(self) -> int:
        return sum(q.bytes_billed or 0 for q in self.queries)

    @property
    def bytes_billed(self) -> int | None:
        return None if self.unknown else self.known_billed

    def to_json(self) -> dict[str, Any]:
        total = self.bytes_billed
        return {
            "bytes_processed": None if self.unknown else sum(q.bytes_processed or 0 for q in self.queries),
            "bytes_billed": total,
            "usd": None if total is None else usd(total, self.price),
            "unknown": len(self.unknown),
            "queries": [q.to_json(self.price) for q in self.queries],
        }


def usd(bytes_billed: int, price: float) -> float:
    return bytes_billed / TIB * price


def cap_refusal(table_cost: TableCost, spent: int, cap: int | None) -> str | None:
    """Why the table is refused under the cap on what one run may process (`spent`: by the tables before it)."""
    if cap is None:
        return None
    before = f" after {bytes_text(spent)} by the tables before it" if spent else ""
    if table_cost.unknown:
        first = table_cost.unknown[0]
        return (
            f"the cost of {len(table_cost.unknown)} of its queries is unknown ({first.what}: {first.unknown}) and "
            f"{CAP_SETTING} = {cap} caps what one --apply may process, so it is refused (fail closed): "
            "take the cap out of the stack for the run that migrates it"
        )
    total = table_cost.known_billed
    if spent + total <= cap:
        return None
    return (
        f"estimated {total} bytes billed ({bytes_text(total)}){before} exceed {CAP_SETTING} = {cap} "
        f"({bytes_text(cap)}): raise the cap or migrate the table in a run of its own"
    )


def bytes_text(count: int | None) -> str:
    if count is None:
        return "unknown"
    for unit, size in (("TiB", TIB), ("GiB", 2**30), ("MiB", MIB), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def usd_text(amount: float | None) -> str:
    if amount is None:
        return "unknown"
    if 0 < amount < 0.01:
        return "< $0.01"
    return f"${amount:,.2f}"
