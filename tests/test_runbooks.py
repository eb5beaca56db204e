"""The README's runbooks walked step by step as changes of what the program registers, each step judged by the
engine's and the provider's rules (infra/analysis/resourcediff.py names the source of each):

- pulumi/pulumi pkg/resource/deploy/step_generator.go: shouldTriggerReplace (null never replaces),
  continueStepsFromDiff (protect refuses a replacement; deleteBeforeReplace overrides the provider),
  generateSteps (import when the goal has an id state lacks).
- terraform-provider-google resource_bigquery_table.go resourceBigQueryTableDelete (deletion_protection read
  from state), resourceBigQueryTableUpdate (deletion_protection is client-side only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from helpers import invoke

from infra.analysis.changes import DiffResult, Verdict, classify_catalogs
from infra.analysis.resourcediff import compare_registrations
from infra.model.catalog import load_catalog
from infra.model.registrations import Registrations
from infra.pulumi_edge.mockrun import run_stack
from infra.reports.docs import render_data_dictionary

PROFILES = "tenants.tenant_profiles"


def registrations(root: Path, stack: str, **config: Any) -> Registrations:
    """What `pulumi up` registers with the stack file changed by `config` (None unsets a key)."""
    path = root / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    for key, value in config.items():
        if value is None:
            document["config"].pop(f"tenant-bigquery:{key}", None)
        else:
            document["config"][f"tenant-bigquery:{key}"] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return run_stack(root, stack).registrations()


def up(old: Registrations, new: Registrations, stack: str) -> DiffResult:
    """What the next `pulumi up` does when state holds `old` and the program registers `new`."""
    return compare_registrations(old, new, stack=stack, old_label="state", new_label="program")


def verdicts(result: DiffResult) -> dict[str, Verdict]:
    return {r.name: r.verdict for r in result.resources}


def replaced(result: DiffResult) -> list[str]:
    return [r.name for r in result.resources if r.verdict is Verdict.REPLACE]


def replace_reason(result: DiffResult, name: str) -> str:
    [resource] = [r for r in result.resources if r.name == name]
    return next(c.reason for c in resource.changes if c.verdict is Verdict.REPLACE)


# ---------------------------------------------------------------- Force recreation


def test_force_recreation_in_dev(repo_copy: Path) -> None:
    state = registrations(repo_copy, "dev")

    token = registrations(repo_copy, "dev", recreate={PROFILES: "2026-11-25"})  # step 2
    first = up(state, token, "dev")
    assert replaced(first) == [PROFILES]  # step 3: exactly that table, from the trigger
    reason = replace_reason(first, PROFILES)
    assert "shouldTriggerReplace" in reason and "Also:" not in reason  # deleted first, nothing in the way

    assert up(token, registrations(repo_copy, "dev"), "dev").resources == ()  # step 6: left in place, nothing
    again = registrations(repo_copy, "dev", recreate={PROFILES: "2026-12-01"})
    assert replaced(up(token, again, "dev")) == [PROFILES]  # a new token recreates again
    removed = registrations(repo_copy, "dev", recreate=None)
    assert replaced(up(again, removed, "dev")) == [PROFILES]  # removing the entry recreates once more


def test_force_every_table_with_one_token(repo_copy: Path) -> None:
    state = registrations(repo_copy, "dev")
    everything = registrations(repo_copy, "dev", recreate={"*": "reset-1"})
    result = up(state, everything, "dev")
    assert sorted(replaced(result)) == sorted(r.key for r in state.resources if r.kind == "table")
    assert "tenants" not in verdicts(result)  # the dataset is kept


def test_force_recreation_in_prod_needs_the_approval_first(repo_copy: Path) -> None:
    state = registrations(repo_copy, "prod")

    direct = up(state, registrations(repo_copy, "prod", recreate={PROFILES: "1"}), "prod")
    reason = replace_reason(direct, PROFILES)
    assert "the engine refuses this replacement while protect is on" in reason
    assert "deletion_protection true" in reason

    registrations(repo_copy, "prod", recreate=None)
    approved = registrations(repo_copy, "prod", approveDataLoss=[PROFILES])
    approval = up(state, approved, "prod")
    assert verdicts(approval) == {PROFILES: Verdict.UPDATE}  # deletionProtection and the label, in place
    assert not approval.fails(Verdict.UPDATE_DESTRUCTIVE)  # lowered, but approved

    recreate = registrations(repo_copy, "prod", recreate={PROFILES: "1"})
    forced = up(approved, recreate, "prod")
    assert replaced(forced) == [PROFILES]
    assert "Also:" not in replace_reason(forced, PROFILES)

    restored = registrations(repo_copy, "prod", approveDataLoss=None)
    back = up(recreate, restored, "prod")
    assert verdicts(back) == {PROFILES: Verdict.UPDATE}  # both protections back, nothing replaced


# ---------------------------------------------------------------- Approve data loss in prod


def change_column_type(root: Path) -> None:
    path = root / "schemas" / "tenants" / "tenant_profiles.json"
    columns = json.loads(path.read_text())
    next(c for c in columns if c["name"] == "suspended_at")["type"] = "DATETIME"
    path.write_text(json.dumps(columns, indent=2))


def test_approve_data_loss_for_a_replacement_takes_two_runs(repo_copy: Path) -> None:
    state = registrations(repo_copy, "prod")
    approved = registrations(repo_copy, "prod", approveDataLoss=[PROFILES])  # step 2, a change of its own
    step2 = up(state, approved, "prod")
    assert verdicts(step2) == {PROFILES: Verdict.UPDATE}
    paths = {c.path for r in step2.resources for c in r.changes}
    assert paths == {"(deletionProtection)", "(labels.data-loss)", "(option protect)"}  # the label the README names

    change_column_type(repo_copy)
    changed = registrations(repo_copy, "prod")
    step3 = up(approved, changed, "prod")
    assert replaced(step3) == [PROFILES]
    assert "Also:" not in replace_reason(step3, PROFILES)  # protect and deletion_protection already off in state
    assert not step3.fails(Verdict.UPDATE_DESTRUCTIVE)

    restored = registrations(repo_copy, "prod", approveDataLoss=None)
    assert verdicts(up(changed, restored, "prod")) == {PROFILES: Verdict.UPDATE}  # step 4


def test_approval_and_replacement_in_one_run_fail_at_the_delete(repo_copy: Path) -> None:
    state = registrations(repo_copy, "prod")
    change_column_type(repo_copy)
    both = registrations(repo_copy, "prod", approveDataLoss=[PROFILES])
    reason = replace_reason(up(state, both, "prod"), PROFILES)
    # protect may be lifted in the same run; deletion_protection is read from the old state at the delete.
    assert "the engine refuses" not in reason
    assert "resourceBigQueryTableDelete" in reason


# ---------------------------------------------------------------- Adopt what the bootstrap processor created


def test_adopt_with_the_import_option_then_switch_it_off(repo_copy: Path) -> None:
    nothing = Registrations((), {})
    adopting = registrations(repo_copy, "prod", adoptExisting=True)
    first = up(nothing, adopting, "prod")
    by_kind = {(r.kind, r.verdict) for r in first.resources}
    assert by_kind == {("dataset", Verdict.ADDED), ("table", Verdict.ADDED), ("component", Verdict.NOOP)}
    assert all("import" in r.changes[0].reason for r in first.resources if r.kind != "component")

    after = registrations(repo_copy, "prod", adoptExisting=None)
    second = up(adopting, after, "prod")
    assert replaced(second) == []
    ignored = [c for r in second.resources for c in r.changes if c.path == "(option ignoreChanges)"]
    assert len(ignored) == 10  # the dataset and 9 tables
    assert all(c.verdict is Verdict.UPDATE and "imported values" in c.reason for c in ignored)


# ---------------------------------------------------------------- Retire a table without deleting it
# pulumi/pulumi pkg/resource/deploy/step.go DeleteStep.Apply: a removed resource's delete reads protect and then
# retainOnDelete from its state, so both must be recorded by an `up` before the removal (two runs).


def declaration(root: Path) -> tuple[Path, dict[str, Any]]:
    path = root / "stacks" / "tenants.yaml"
    return path, yaml.safe_load(path.read_text())


def retire(root: Path, table: str) -> None:
    """Step 2: `retired: true` under the table."""
    path, document = declaration(root)
    document["tables"][table.split(".")[1]]["retired"] = True
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def remove_retired(root: Path, table: str) -> None:
    """Step 4: the entry and its schema file deleted, the id listed under retired_tables."""
    table_id = table.split(".")[1]
    path, document = declaration(root)
    del document["tables"][table_id]
    document["retired_tables"] = [table_id]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (root / "schemas" / "tenants" / f"{table_id}.json").unlink()


def test_retire_a_table_in_prod_in_two_runs(repo_copy: Path) -> None:
    state = run_stack(repo_copy, "prod").registrations()

    retire(repo_copy, PROFILES)
    retiring = registrations(repo_copy, "prod")
    [table] = [r for r in retiring.resources if r.key == PROFILES]
    assert (table.options["protect"], table.options["retainOnDelete"]) == (False, True)
    assert table.inputs["deletionProtection"] is True  # the provider is never called to delete it: left as it was
    first = up(state, retiring, "prod")
    assert verdicts(first) == {PROFILES: Verdict.NOOP}
    [resource] = first.resources
    assert {c.path for c in resource.changes} == {"(option protect)", "(option retainOnDelete)"}
    assert not resource.lowered_safeties  # protect goes with retainOnDelete: nothing can be deleted
    assert not first.fails(Verdict.UPDATE_DESTRUCTIVE)  # the prod data-loss gate passes, no approval

    remove_retired(repo_copy, PROFILES)
    removed = registrations(repo_copy, "prod")
    second = up(retiring, removed, "prod")
    assert verdicts(second) == {PROFILES: Verdict.NOOP}
    [change] = second.resources[0].changes
    assert "no longer managed; the table and its rows stay in BigQuery" in change.reason
    assert "DeleteStep.Apply" in change.reason
    assert not second.fails(Verdict.UPDATE_DESTRUCTIVE)


def test_retiring_in_one_run_is_a_removal_and_fails_the_gate(repo_copy: Path) -> None:
    state = run_stack(repo_copy, "prod").registrations()
    remove_retired(repo_copy, PROFILES)
    result = up(state, registrations(repo_copy, "prod"), "prod")
    assert verdicts(result) == {PROFILES: Verdict.REMOVED}
    assert result.fails(Verdict.UPDATE_DESTRUCTIVE)


def test_the_catalog_diff_says_the_same_of_both_steps(repo_copy: Path) -> None:
    """`diff` without --stack compares the catalogs: the same verdicts, from `retired` at the base."""
    base = load_catalog(repo_copy)
    retire(repo_copy, PROFILES)
    retiring = load_catalog(repo_copy)
    [(name, [change])] = [(r.name, list(r.changes)) for r in classify_catalogs(base, retiring)[0]]
    assert (name, change.path, change.verdict) == (PROFILES, "(retired)", Verdict.NOOP)
    remove_retired(repo_copy, PROFILES)
    [gone] = classify_catalogs(retiring, load_catalog(repo_copy))[0]
    assert (gone.name, gone.verdict) == (PROFILES, Verdict.NOOP)
    [one_step] = classify_catalogs(base, load_catalog(repo_copy))[0]
    assert one_step.verdict is Verdict.REMOVED


def test_a_retired_table_cannot_be_replaced(repo_copy: Path) -> None:
    """A replacement's delete keeps the old table too (retainOnDelete applies to delete-replaced), so the
    create after it fails: diff says so on the replacement."""
    retire(repo_copy, PROFILES)
    retiring = registrations(repo_copy, "prod")
    change_column_type(repo_copy)
    reason = replace_reason(up(retiring, registrations(repo_copy, "prod"), "prod"), PROFILES)
    assert "state records retainOnDelete" in reason and "409 Already Exists" in reason


def test_plan_and_the_data_dictionary_show_the_retirement(repo_copy: Path) -> None:
    retire(repo_copy, PROFILES)
    plan = invoke("plan", "--stack", "prod", "--root", str(repo_copy), cwd=repo_copy)
    [row] = [line for line in plan.stdout.splitlines() if f" {PROFILES} " in line]
    assert "no, retained" in row
    remove_retired(repo_copy, "tenants.tenant_api_keys")
    text = render_data_dictionary(load_catalog(repo_copy))
    assert "- Retired: kept in BigQuery with its rows once its declaration is removed" in text
    assert "Retired, kept in BigQuery and no longer managed here: `tenant_api_keys`." in text
