"""The classifier on real schema histories (Mozilla) and against a port of the provider's own rule.

`provider_is_changeable` is a line-by-line port of terraform-provider-google's
`resourceBigQueryTableSchemaIsChangeable` on raw JSON (its one nondeterminism, Go's random map order
when a RECORD's fields are compared before its mode, is fixed here to mode first). A change is a
replace exactly when that function says the schema is not changeable.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from infra.analysis import changes as classifier
from infra.analysis.changes import Change, Citation, Verdict, worst
from infra.files.filediff import diff_schema_files

CORPUS = Path(__file__).resolve().parent / "corpus" / "mozilla-pipeline-schemas"
HISTORY = CORPUS / "history"
STEPS = [
    (history.name, old, new)
    for history in sorted(HISTORY.iterdir())
    for old, new in zip(sorted(history.glob("*.bq")), sorted(history.glob("*.bq"))[1:], strict=False)
]
TYPE_ALIASES = ({"INTEGER", "INT64"}, {"FLOAT", "FLOAT64"}, {"BOOLEAN", "BOOL"})


def provider_is_changeable(old: Any, new: Any, top_level: bool = True) -> bool:
    if isinstance(old, list):
        if not isinstance(new, list):
            return False
        old_map = {c["name"]: c for c in old}
        new_map = {c["name"]: c for c in new}
        if any(name not in old_map and column.get("mode") == "REQUIRED" for name, column in new_map.items()):
            return False
        same_name, dropped = 0, 0
        for name, column in old_map.items():
            if name not in new_map:
                if not top_level:
                    return False
                dropped += 1
                continue
            if not provider_is_changeable(column, new_map[name], top_level=False):
                return False
            if top_level:
                same_name += 1
        return dropped == 0 or len(new) - same_name == 0
    if not isinstance(new, dict):
        return False
    old_type, new_type = old["type"].upper(), new["type"].upper()
    if old_type != new_type and not any(old_type in pair and new_type in pair for pair in TYPE_ALIASES):
        return False
    old_mode, new_mode = (old.get("mode") or "NULLABLE").upper(), (new.get("mode") or "NULLABLE").upper()
    if old_mode != new_mode and not (old_mode == "REQUIRED" and new_mode == "NULLABLE"):
        return False
    if "fields" in old or "fields" in new:
        return provider_is_changeable(old.get("fields"), new.get("fields"), top_level=False)
    return True


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def classify_files(old: Path, new: Path) -> list[Change]:
    """The path `diff --old/--new` takes: read, validate (column limit waived), classify."""
    return [change for table in diff_schema_files(old, new).resources for change in table.changes]


def classify_raw(old: Any, new: Any, folder: Path) -> list[Change]:
    (folder / "old.bq").write_text(json.dumps(old))
    (folder / "new.bq").write_text(json.dumps(new))
    return classify_files(folder / "old.bq", folder / "new.bq")


CITATIONS = {value for value in vars(classifier).values() if isinstance(value, Citation)}


@pytest.mark.parametrize(("history", "old", "new"), STEPS, ids=[f"{h}/{n.name}" for h, _, n in STEPS])
def test_every_step_of_the_real_histories_gets_a_verdict_justified_by_a_named_rule(
    history: str, old: Path, new: Path
) -> None:
    changes = classify_files(old, new)
    assert changes, "every step in the corpus changes the schema"
    for change in changes:
        assert change.citation in CITATIONS
        assert change.reason.endswith(f"({change.citation.source})")
    replaced = worst(c.verdict for c in changes) is Verdict.REPLACE
    assert replaced == (not provider_is_changeable(load(old), load(new)))


def test_the_non_additive_steps_of_activation() -> None:
    def step(old: str, new: str) -> dict[str, Verdict]:
        changes = classify_files(HISTORY / "activation" / old, HISTORY / "activation" / new)
        return {c.path: c.verdict for c in changes if c.verdict is not Verdict.UPDATE}

    assert step("002-71d570190.bq", "003-4410fd535.bq") == {"submission_timestamp": Verdict.REPLACE}  # STRING->DATETIME
    assert step("003-4410fd535.bq", "004-bc03c2bb8.bq") == {"submission_timestamp": Verdict.REPLACE}  # ->TIMESTAMP
    repeated_to_nullable = step("004-bc03c2bb8.bq", "005-d7daf62db.bq")
    assert repeated_to_nullable["metrics.string"] is Verdict.REPLACE
    assert repeated_to_nullable["metrics.string.key"] is Verdict.REPLACE  # a nested field dropped
    assert step("011-983f9c5e0.bq", "012-57ab7f9dd.bq") == {"metrics.labeled_counter": Verdict.REPLACE}


def test_required_fields_arriving_inside_a_new_record_are_applied_in_place() -> None:
    changes = classify_files(HISTORY / "activation" / "008-11e6f4d5e.bq", HISTORY / "activation" / "009-fbfee46a2.bq")
    [change] = changes
    assert (change.path, change.verdict) == ("metrics.labeled_counter", Verdict.UPDATE)
    assert "BigQuery accepts REQUIRED fields inside a new RECORD" in change.reason


@pytest.mark.parametrize("history", ["discovery", "logins-sync"])
def test_the_additive_histories_are_updates_throughout(history: str) -> None:
    for _, old, new in (s for s in STEPS if s[0] == history):
        assert worst(c.verdict for c in classify_files(old, new)) is Verdict.UPDATE, new.name


def _columns(schema: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Every column list in the schema (the top level and each RECORD's fields)."""
    lists = [schema]
    for column in schema:
        if column.get("fields"):
            lists += _columns(column["fields"])
    return lists


def mutate(schema: list[dict[str, Any]], rng: random.Random, operations: int) -> list[dict[str, Any]]:
    new = copy.deepcopy(schema)
    for _ in range(operations):
        level = new if rng.random() < 0.5 else rng.choice(_columns(new))  # top-level rules differ: weigh them
        operation = rng.choice(["add", "drop", "type", "mode", "rename", "describe", "reorder"])
        if operation == "add" or len(level) < 2:
            mode = rng.choice(["NULLABLE", "REPEATED", "REQUIRED"])
            level.append({"name": f"new_{rng.randint(0, 10**6)}", "type": "STRING", "mode": mode})
            continue
        column = rng.choice(level)
        if operation == "drop":
            level.remove(column)
        elif operation == "type" and not column.get("fields"):
            column["type"] = rng.choice(["INT64", "INTEGER", "STRING", "TIMESTAMP", "FLOAT"])
        elif operation == "mode":
            column["mode"] = rng.choice(["NULLABLE", "REPEATED", "REQUIRED", "nullable"])
        elif operation == "rename":
            column["name"] = column["name"].upper() if rng.random() < 0.5 else column["name"] + "_v2"
        elif operation == "describe":
            column["description"] = "changed"
        else:
            rng.shuffle(level)
    return new


def test_replace_matches_the_provider_rule_on_random_mutations(tmp_path: Path) -> None:
    rng = random.Random(20260101)
    base = load(HISTORY / "activation" / "041-1298f1f57.bq")
    checked = {True: 0, False: 0}
    for _ in range(200):
        old = mutate(base, rng, 1)
        new = mutate(old, rng, rng.choice([1, 1, 2]))  # mostly one change, so no other one hides it
        changeable = provider_is_changeable(copy.deepcopy(old), copy.deepcopy(new))
        replaced = worst(c.verdict for c in classify_raw(old, new, tmp_path)) is Verdict.REPLACE
        assert replaced == (not changeable), json.dumps({"old": old, "new": new})[:2000]
        checked[changeable] += 1
    assert min(checked.values()) > 50, checked  # both outcomes exercised


def test_the_schema_over_the_column_limit_is_compared_with_a_warning(tmp_path: Path) -> None:
    # Deployed tables exist above the documented limit; refusing them would leave their changes unchecked.
    largest = CORPUS / "schemas" / "firefox-desktop" / "metrics" / "metrics.1.bq"
    grown = [*load(largest), {"name": "note", "type": "STRING", "mode": "NULLABLE"}]
    (tmp_path / "grown.bq").write_text(json.dumps(grown))

    result = diff_schema_files(largest, tmp_path / "grown.bq")

    assert [(c.path, c.verdict) for t in result.resources for c in t.changes] == [("note", Verdict.UPDATE)]
    assert [w.split(": ", 1)[1] for w in result.warnings] == [
        "10,203 columns, more than BigQuery's documented 10,000; compared anyway, since a deployed table may "
        "already have that many",
        "10,204 columns, more than BigQuery's documented 10,000; compared anyway, since a deployed table may "
        "already have that many",
    ]
