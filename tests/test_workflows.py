"""GitHub Actions workflows: linted offline by zizmor, plus the delivery rules no linter knows.

zizmor (pinned in requirements-dev.txt, a binary wheel) validates each workflow against GitHub's schema
(`--strict-collection` makes a schema error fatal) and audits it: template injection, unpinned actions,
excessive permissions, credentials persisted by checkout, dangerous triggers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import FIXTURE_ROOT, REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ZIZMOR = Path(sys.executable).parent / "zizmor"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO_ROOT.glob("Pulumi.*.yaml"))


def zizmor(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ZIZMOR), "--offline", "--strict-collection", "--no-progress", "--color=never", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )


def workflow(name: str, folder: Path = WORKFLOWS) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load((folder / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    return next(step for step in steps(job) if step.get("uses", "").startswith(f"{action}@"))


def broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, folder)
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return folder


def test_zizmor_finds_nothing() -> None:
    result = zizmor(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        # a schema error: a misspelt key
        ("pull-request.yml", "runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04", "runs_on"),
        # script injection: a pull request title lands in a shell script
        (
            "pull-request.yml",
            "run: make test",
            'run: echo "${{ github.event.pull_request.title }}"',
            "template-injection",
        ),
        # an action pinned to a movable tag
        (
            "pr-comment.yml",
            "actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea",
            "actions/github-script@v7",
            "unpinned-uses",
        ),
        # a checkout that leaves the token on disk
        ("pulumi-up.yml", "        with:\n          persist-credentials: false\n", "", "artipacked"),
    ],
    ids=["schema", "injection", "unpinned", "persisted-credentials"],
)
def test_a_broken_workflow_fails_the_lint(tmp_path: Path, name: str, old: str, new: str, expected: str) -> None:
    result = zizmor(broken_copy(tmp_path, name, old, new))
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert name in result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version_named() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for line in path.read_text().splitlines():
            match = re.search(r"uses: (\S+)", line)
            if match and not match.group(1).startswith("./"):
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), f"{path.name}: {line}"


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_least_privilege_everywhere(name: str) -> None:
    document = workflow(name)
    assert document["permissions"] == {}, "no default token permissions at workflow level"
    for job_id, job in document["jobs"].items():
        assert "permissions" in job, f"{name}: job {job_id} states its permissions"
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if step.get("uses", "").startswith("google-github-actions/auth@"):
                assert set(step["with"]) == {"workload_identity_provider", "service_account"}  # no key files


def test_only_the_preview_may_write_to_pull_requests_and_only_for_same_repository_branches() -> None:
    jobs = workflow("pull-request.yml")["jobs"]
    writers = {job_id for job_id, job in jobs.items() if "write" in job["permissions"].values()}
    assert writers == {"preview"}
    assert jobs["preview"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def test_pull_requests_run_the_tests_the_report_and_a_dev_preview_without_prod_secrets() -> None:
    jobs = workflow("pull-request.yml")["jobs"]
    assert [step["run"] for step in steps(jobs["checks"]) if "run" in step] == ["make test"]
    report = "\n".join(step.get("run", "") for step in steps(jobs["report"]))
    assert 'python -m infra.cli diff --base "$BASE_SHA" --stack "$stack" --format markdown' in report
    assert 'python -m infra.cli plan --stack "$stack"' in report
    assert step_using(jobs["report"], "actions/upload-artifact")["with"]["name"] == "pr-report"
    assert step_using(jobs["report"], "actions/checkout")["with"]["fetch-depth"] == 0
    # Pull-request code runs in the preview: only dev's stack, and the read-only identity.
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == ["dev"]
    [preview] = [
        s for s in steps(jobs["preview"]) if s.get("uses", "").startswith("pulumi/actions@") and "command" in s["with"]
    ]
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["comment-on-pr"] is True
    assert preview["with"]["policyPacks"] == "policies"
    assert preview["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    assert "env" not in preview  # no passphrase: dev's Cloud KMS key, which this identity may use
    auth = step_using(jobs["preview"], "google-github-actions/auth")["with"]
    assert auth["service_account"] == "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}"
    assert all((REPO_ROOT / "policies" / "config" / f"{stack}.json").is_file() for stack in STACKS)


# ---------------------------------------------------------------- delivery: plans, convergence, drift, KMS, audit
#
# Each rule is a check over a folder of workflows: it holds for this repository's, and each fails on a copy broken
# the way the rule forbids (test_each_delivery_rule_fails_on_a_broken_copy). Facts the checks rely on, from source:
# - pulumi/pulumi pkg/cmd/pulumi/operations/preview.go: `--save-plan` writes the plan after the preview, with
#   `--json` too (only the "Update plan written" hint is skipped); `--expect-no-changes` fails a preview with
#   changes (backenderr.NoChangesExpectedError). up.go: `--plan` reads it into opts.Engine.Plan; the flag is
#   only hidden from --help unless PULUMI_EXPERIMENTAL is set (MarkHidden), cobra still parses it, so nothing
#   here sets PULUMI_EXPERIMENTAL (it would switch on every experimental engine behaviour).
# - pkg/resource/deploy/step_generator.go validateSteps: a step the plan does not hold fails the update ("... is
#   not allowed by the plan"); the goal check ("resource ... violates plan"); deployment_executor.go Execute: a
#   planned step that never happened fails it too. plan.go Plan: a same may stand for a planned update or
#   replace, an update for a planned replace, so a plan with a replace must not outlive the migration.
# - pkg/backend/diy/backend.go Refresh: `--preview-only` goes straight to a dry-run apply, takes no lock and
#   writes no state (apply persists only when !DryRun): the drift check needs only read access.
# - pkg/engine/update.go HasChanges and the refresh step's ResultOp (deploy/step.go): `refresh --expect-no-changes`
#   fails when a refreshed resource differs from the state (an update or a delete), not on outputs alone.

HEAD_CHECK = "Refuse a commit that is no longer the head of main"
GATE = 'preview-gate --stack "$STACK" "$RUNNER_TEMP/preview.json"'
KMS_GUARD = "Refuse a stack file without its Cloud KMS secrets provider and data key"
PLAN = '"$RUNNER_TEMP/plan/plan.json"'
PLAN_ARTIFACT = "pulumi-plan-${{ inputs.stack }}"


def pulumi_commands(step: dict[str, Any]) -> list[str]:
    """The `pulumi ...` command lines of a step's script, continuation lines joined."""
    script = re.sub(r"\\\n\s*", "", step.get("run", ""))
    return [line.strip() for line in script.splitlines() if re.match(r"\s*pulumi \w", line)]


def runs_pulumi(step: dict[str, Any]) -> bool:
    """A step that runs the Pulumi CLI on a stack's resources or state (pulumi/actions with a command included;
    its installer-only form, no command, runs nothing: pulumi/actions src/main.ts installOnly). `login` and
    `about` only read where the state is and which versions run."""
    uses_action = step.get("uses", "").startswith("pulumi/actions@") and "command" in step.get("with", {})
    return uses_action or any(not re.match(r"pulumi (login|about)\b", c) for c in pulumi_commands(step))


def all_jobs(folder: Path) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, job_id, job)
        for path in sorted(folder.glob("*.yml"))
        for job_id, job in workflow(path.name, folder)["jobs"].items()
        if "steps" in job
    ]


def index_of(job: dict[str, Any], predicate: Any) -> int:
    return next(i for i, step in enumerate(steps(job)) if predicate(step))


def check_no_up_without_a_plan(folder: Path) -> None:
    ups = 0
    for name, job_id, job in all_jobs(folder):
        for step in steps(job):
            if step.get("uses", "").startswith("pulumi/actions@"):
                assert step.get("with", {}).get("command") not in {"up", "update"} or step["with"].get("plan"), (
                    f"{name} {job_id}: pulumi/actions up without its `plan` input"
                )
            for command in pulumi_commands(step):
                if re.match(r"pulumi (up|update)\b", command):
                    ups += 1
                    assert f"--plan {PLAN}" in command, f"{name} {job_id}: {command}"
                    assert "--refresh" not in command and "--skip-preview" not in command, command
                    assert "--target" not in command and "--replace" not in command, command
    assert ups >= 1


def check_the_applied_plan_is_the_gated_one(folder: Path) -> None:
    jobs = workflow("pulumi-up.yml", folder)["jobs"]
    preview, migrate, up = jobs["preview"], jobs["migrate"], jobs["up"]
    # Every plan is saved by the step that gates its preview, without the migration allowance, and that
    # step's digest of exactly that file is its job's output; the artifact is that file.
    for job in (preview, migrate):
        [saving] = [s for s in steps(job) if any("--save-plan" in c for c in pulumi_commands(s))]
        assert saving["id"] == "plan" and job["outputs"]["plan-digest"] == "${{ steps.plan.outputs.digest }}"
        [command] = [c for c in pulumi_commands(saving) if "--save-plan" in c]
        assert command.startswith('pulumi preview --stack "$STACK" --refresh --json --save-plan ' + PLAN), command
        assert '> "$RUNNER_TEMP/preview.json"' in command and "--ignore-protect" not in command
        assert GATE in saving["run"] and "--migration" not in saving["run"]
        assert 'sha256sum "$RUNNER_TEMP/plan/plan.json"' in saving["run"] and saving["shell"] == "bash"
        upload = step_using(job, "actions/upload-artifact")
        assert upload["with"]["name"] == PLAN_ARTIFACT and upload["with"]["path"] == "${{ runner.temp }}/plan/plan.json"
        assert upload.get("if") == saving.get("if")
    # Before the approval, a plan is kept only when nothing is to migrate: one made before `migrate --apply`
    # is never applied after it. With tables to migrate, that preview is gated with the allowance, unsaved.
    runs = [s.get("run", "") for s in steps(preview)]
    migration = index_of(preview, lambda s: s.get("id") == "migration")
    assert (
        'migrate --stack "$STACK" --apply' not in runs[migration] and '"$RUNNER_TEMP/migration.json"' in runs[migration]
    )
    [allowance] = [s for s in steps(preview) if "--migration" in s.get("run", "")]
    assert allowance["if"] == "steps.migration.outputs.migrating == 'true'"
    assert "--save-plan" not in allowance["run"] and GATE in allowance["run"] and "--ignore-protect" in allowance["run"]
    assert step_using(preview, "actions/upload-artifact")["if"] == "steps.migration.outputs.migrating == 'false'"
    assert preview["outputs"]["migrating"] == "${{ steps.migration.outputs.migrating }}"
    # With tables to migrate, `migrate` (approved) applies them, then makes and gates the plan `up` applies.
    assert migrate["needs"] == "preview" and "needs.preview.outputs.migrating == 'true'" in migrate["if"]
    applied = index_of(migrate, lambda s: 'migrate --stack "$STACK" --apply' in s.get("run", ""))
    assert applied < index_of(migrate, lambda s: s.get("id") == "plan")
    # `up` applies the artifact only if its digest is the gating job's, and only after the approval.
    for job in (migrate, up):
        assert job["environment"] == "${{ inputs.stack }}"
    assert preview["environment"] == "${{ inputs.preview-environment }}"
    assert set(up["needs"]) == {"preview", "migrate"}
    condition = " ".join(up["if"].split())
    assert "needs.preview.result == 'success'" in condition
    assert (
        "(needs.migrate.result == 'success' || (needs.migrate.result == 'skipped' "
        "&& needs.preview.outputs.migrating == 'false'))"
    ) in condition
    download = index_of(up, lambda s: s.get("uses", "").startswith("actions/download-artifact@"))
    assert steps(up)[download]["with"] == {"name": PLAN_ARTIFACT, "path": "${{ runner.temp }}/plan"}
    check = index_of(up, lambda s: "sha256sum --check" in s.get("run", ""))
    assert steps(up)[check]["env"] == {
        "PLAN_DIGEST": "${{ needs.migrate.outputs.plan-digest || needs.preview.outputs.plan-digest }}"
    }
    refresh = index_of(up, lambda s: any(c.startswith("pulumi refresh") for c in pulumi_commands(s)))
    assert pulumi_commands(steps(up)[refresh]) == ['pulumi refresh --stack "$STACK" --yes']
    deploy = index_of(up, lambda s: any(c.startswith("pulumi up") for c in pulumi_commands(s)))
    assert download < check < refresh < deploy
    assert not any(s.get("continue-on-error") or s.get("if") for s in steps(up)[: deploy + 1])
    assert not any("PULUMI_EXPERIMENTAL" in path.read_text() for path in folder.glob("*.yml"))


def is_up(step: dict[str, Any]) -> bool:
    action = step.get("uses", "").startswith("pulumi/actions@") and step["with"].get("command") in {"up", "update"}
    return action or any(re.match(r"pulumi (up|update)\b", c) for c in pulumi_commands(step))


def check_convergence_and_verify_after_every_up(folder: Path) -> None:
    checked = 0
    for name, job_id, job in all_jobs(folder):
        deploys = [i for i, s in enumerate(steps(job)) if is_up(s)]
        if not deploys:
            continue
        checked += 1
        after = steps(job)[deploys[-1] + 1 :]
        converge = index_of({"steps": after}, lambda s: any("--expect-no-changes" in c for c in pulumi_commands(s)))
        assert pulumi_commands(after[converge]) == ['pulumi preview --stack "$STACK" --refresh --expect-no-changes']
        verify = index_of({"steps": after}, lambda s: 'infra.cli verify --stack "$STACK"' in s.get("run", ""))
        assert converge < verify and after[verify]["shell"] == "bash", f"{name} {job_id}"
        assert not any(s.get("continue-on-error") or s.get("if") for s in after[: verify + 1]), f"{name} {job_id}"
    assert checked >= 1


def check_no_passphrase_and_every_stack_needs_its_kms_key(folder: Path) -> None:
    for path in sorted(folder.glob("*.yml")):
        assert "PASSPHRASE" not in path.read_text(), path.name
    guarded = 0
    for name, job_id, job in all_jobs(folder):
        if not any(runs_pulumi(s) for s in steps(job)):
            continue
        guard = index_of(job, lambda s: s.get("name") == KMS_GUARD)
        assert guard < index_of(job, runs_pulumi), f"{name} {job_id}: the KMS check comes first"
        assert "if" not in steps(job)[guard]
        guarded += 1
    assert guarded >= 4  # the pull request's preview, preview, migrate, up, drift


def check_every_pulumi_job_records_pulumi_about_and_its_plans_digest(folder: Path) -> None:
    for name, job_id, job in all_jobs(folder):
        if not any(runs_pulumi(s) for s in steps(job)):
            continue
        about = index_of(job, lambda s: 'pulumi about --stack "$STACK"' in s.get("run", ""))
        assert '} >> "$GITHUB_STEP_SUMMARY"' in steps(job)[about]["run"], f"{name} {job_id}"
        assert about < index_of(job, runs_pulumi), f"{name} {job_id}: recorded before the stack is touched"
        scripts = "\n".join(s.get("run", "") for s in steps(job))
        if "--save-plan" in scripts:
            assert 'gated for approval: sha256 \\`$digest\\`" >> "$GITHUB_STEP_SUMMARY"' in scripts, f"{name} {job_id}"
        if re.search(r"pulumi up .*--plan", re.sub(r"\\\n\s*", "", scripts)):
            assert 'applied: sha256 \\`$PLAN_DIGEST\\`" >> "$GITHUB_STEP_SUMMARY"' in scripts, f"{name} {job_id}"


def check_drift_is_read_only_and_keeps_one_issue_per_stack(folder: Path) -> None:
    document = workflow("drift.yml", folder)
    assert document["on"] == {"schedule": [{"cron": "17 4 * * *"}], "workflow_dispatch": None}
    detect, report = document["jobs"]["detect"], document["jobs"]["report"]
    # Detection: read-only token, read-only identity, a dry-run refresh; in the deploy's preview environments.
    assert detect["permissions"] == {"contents": "read", "id-token": "write"}
    assert step_using(detect, "google-github-actions/auth")["with"]["service_account"] == (
        "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}"
    )
    matrix = {entry["stack"]: entry["environment"] for entry in detect["strategy"]["matrix"]["include"]}
    callers = workflow("deploy.yml", folder)["jobs"].values()
    assert matrix == {job["with"]["stack"]: job["with"]["preview-environment"] for job in callers}
    assert sorted(matrix) == STACKS == report["strategy"]["matrix"]["stack"]
    assert detect["environment"] == "${{ matrix.environment }}" and detect["if"] == "github.ref == 'refs/heads/main'"
    [check] = [s for s in steps(detect) if s.get("id") == "drift"]
    [refresh] = pulumi_commands(check)
    assert refresh.startswith('pulumi refresh --stack "$STACK" --preview-only --expect-no-changes')
    assert "--yes" not in refresh and "--skip-preview" not in refresh
    assert '.venv/bin/python -m infra.cli verify --stack "$STACK" --format json' in check["run"]
    commands = [c for s in steps(detect) for c in pulumi_commands(s)]
    assert all(re.match(r"pulumi (login|about|refresh --stack \"\$STACK\" --preview-only)", c) for c in commands)
    # The issue: a token that writes issues and nothing else, no checkout, no script of the repository.
    assert report["permissions"] == {"issues": "write"} and report["needs"] == "detect"
    assert [s["uses"].split("@")[0] for s in steps(report)] == ["actions/download-artifact", "actions/github-script"]
    assert all("run" not in s for s in steps(report))
    script = step_using(report, "actions/github-script")["with"]["script"]
    assert "const marker = `<!-- tenant-bigquery:drift:${stack} -->`;" in script
    assert "creator: 'github-actions[bot]'" in script and "i.body?.startsWith(marker)" in script
    assert document["concurrency"] == {"group": "drift", "cancel-in-progress": False}


def job_instances(folder: Path) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """Each job with steps once per caller of its reusable workflow and per matrix entry, with the values its
    `${{ inputs.* }}` and `${{ matrix.* }}` expressions take there (GitHub docs "Reusing workflows", "Running
    variations of jobs in a workflow": `include` entries, or every combination of the lists)."""
    callers: dict[str, list[dict[str, str]]] = {}
    for path in sorted(folder.glob("*.yml")):
        for job in workflow(path.name, folder)["jobs"].values():
            called = job.get("uses", "").removeprefix("./.github/workflows/")
            if called != job.get("uses", ""):
                values = {f"inputs.{key}": str(value) for key, value in job.get("with", {}).items()}
                callers.setdefault(called, []).append(values)
    instances = []
    for name, job_id, job in all_jobs(folder):
        matrix = job.get("strategy", {}).get("matrix", {})
        lists = {key: value for key, value in matrix.items() if key not in {"include", "exclude"}}
        combos = itertools.product(*lists.values())
        entries = matrix.get("include") or [dict(zip(lists, combo, strict=True)) for combo in combos]
        for inputs in callers.get(name, [{}]):
            for entry in entries:
                instances.append((name, job_id, inputs | {f"matrix.{k}": str(v) for k, v in entry.items()}, job))
    return instances


def resolve(expression: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{\{\s*((?:inputs|matrix)\.[\w-]+)\s*\}\}", lambda m: values[m.group(1)], expression)


def environment_of(job: dict[str, Any], values: dict[str, str]) -> str:
    declared = job["environment"]  # a name, or {name, url}
    return resolve(declared["name"] if isinstance(declared, dict) else declared, values)


def writes(step: dict[str, Any]) -> bool:
    """A step that changes a stack's tables, state or resources. `pulumi refresh --preview-only` is a dry run
    (pkg/backend/diy/backend.go Refresh), `preview`, `login`, `about` and `verify` only read."""
    changes_state = r"pulumi (refresh|destroy|import|state|cancel|stack (import|rm|change-secrets-provider))\b"
    return (
        is_up(step)
        or any(re.match(changes_state, c) and "--preview-only" not in c for c in pulumi_commands(step))
        or bool(re.search(r"infra\.cli (migrate [^\n]*--apply|snapshot)", step.get("run", "")))
    )


DEPLOYER = "${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}"
READER = "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}"


def identities(job: dict[str, Any]) -> set[str]:
    auths = [s for s in steps(job) if s.get("uses", "").startswith("google-github-actions/auth@")]
    return {s["with"]["service_account"] for s in auths}


def check_only_writing_jobs_run_in_the_stacks_environment(folder: Path) -> None:
    """Workload identity federation binds each service account to the OIDC token's `environment` claim (GitHub
    docs "OpenID Connect reference": a job's token carries its environment; README set-up maps it to
    `attribute.environment`), so a job's environment decides which identities it can take, whatever its steps name:
    every job that only reads (the previews, the gate, migrate's dry run, drift detection) runs in
    `<stack>-preview`, where no deployer is bound, and the stack's own environment holds only writing jobs."""
    environments = set()
    for name, job_id, values, job in job_instances(folder):
        writing = any(writes(s) for s in steps(job))
        where = f"{name} {job_id} {values}"
        if "environment" not in job:
            # Outside any environment only a pull request's token reaches GCP, as dev's reader (bound by
            # attribute.event_name/pull_request; pull-request.yml previews dev only).
            assert not writing and identities(job) <= {READER}, where
            assert not identities(job) or set(workflow(name, folder)["on"]) == {"pull_request"}, where
            continue
        stack = values.get("inputs.stack") or values["matrix.stack"]
        environment = environment_of(job, values)
        if writing:
            assert environment == stack and identities(job) == {DEPLOYER}, where
        else:
            assert environment == f"{stack}-preview" and DEPLOYER not in identities(job), where
        environments.add(environment)
    assert environments == {e for stack in STACKS for e in (stack, f"{stack}-preview")}


DELIVERY_RULES = {
    "no up without a plan": check_no_up_without_a_plan,
    "the applied plan is the gated one": check_the_applied_plan_is_the_gated_one,
    "convergence and verify after every up": check_convergence_and_verify_after_every_up,
    "no passphrase, a KMS key per stack": check_no_passphrase_and_every_stack_needs_its_kms_key,
    "pulumi about and the plan's digest": check_every_pulumi_job_records_pulumi_about_and_its_plans_digest,
    "drift: read-only, one issue per stack": check_drift_is_read_only_and_keeps_one_issue_per_stack,
    "only writing jobs in the stack's environment": check_only_writing_jobs_run_in_the_stacks_environment,
}


@pytest.mark.parametrize("rule", DELIVERY_RULES)
def test_the_delivery_rules_hold(rule: str) -> None:
    DELIVERY_RULES[rule](WORKFLOWS)


UP_COMMAND = 'pulumi up --stack "$STACK" --plan "$RUNNER_TEMP/plan/plan.json" --yes'
SAVE = '--json --save-plan "$RUNNER_TEMP/plan/plan.json"'
BROKEN_DELIVERY = [
    ("no up without a plan", "pulumi-up.yml", UP_COMMAND, 'pulumi up --stack "$STACK" --yes'),
    ("no up without a plan", "pulumi-up.yml", UP_COMMAND, UP_COMMAND.replace("--yes", "--yes --refresh")),
    (
        "no up without a plan",
        "pull-request.yml",
        "          command: preview\n",
        "          command: up\n",
    ),
    ("the applied plan is the gated one", "pulumi-up.yml", '        run: pulumi refresh --stack "$STACK" --yes\n', ""),
    (
        "the applied plan is the gated one",
        "pulumi-up.yml",
        "          PLAN_DIGEST: ${{ needs.migrate.outputs.plan-digest || needs.preview.outputs.plan-digest }}",
        "          PLAN_DIGEST: ${{ needs.preview.outputs.plan-digest }}",
    ),
    (
        "the applied plan is the gated one",
        "pulumi-up.yml",  # the preview's plan uploaded even with tables to migrate
        "      - uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2\n"
        "        if: steps.migration.outputs.migrating == 'false'\n",
        "      - uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2\n",
    ),
    (
        "the applied plan is the gated one",
        "pulumi-up.yml",  # `up` after a failed migration
        "      && (needs.migrate.result == 'success'\n",
        "      && (needs.migrate.result != 'cancelled'\n",
    ),
    (
        "the applied plan is the gated one",
        "pulumi-up.yml",  # the migrate job's plan gated with the allowance
        '            | tee -a "$GITHUB_STEP_SUMMARY"\n          digest=',
        '            --migration "$RUNNER_TEMP/migration.json" | tee -a "$GITHUB_STEP_SUMMARY"\n          digest=',
    ),
    (
        "the applied plan is the gated one",
        "pulumi-up.yml",  # a plan made with the engine's protect check off
        "--refresh --json --save-plan",
        "--refresh --json --ignore-protect --save-plan",
    ),
    (
        "convergence and verify after every up",
        "pulumi-up.yml",
        'run: pulumi preview --stack "$STACK" --refresh --expect-no-changes',
        'run: pulumi preview --stack "$STACK" --refresh',
    ),
    (
        "convergence and verify after every up",
        "pulumi-up.yml",
        '        run: .venv/bin/python -m infra.cli verify --stack "$STACK" | tee -a "$GITHUB_STEP_SUMMARY"',
        "        continue-on-error: true\n"
        '        run: .venv/bin/python -m infra.cli verify --stack "$STACK" | tee -a "$GITHUB_STEP_SUMMARY"',
    ),
    (
        "no passphrase, a KMS key per stack",
        "pull-request.yml",
        "          policyPackConfigs: policies/config/${{ matrix.stack }}.json\n",
        "          policyPackConfigs: policies/config/${{ matrix.stack }}.json\n"
        "        env:\n          PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PULUMI_CONFIG_PASSPHRASE_DEV }}\n",
    ),
    ("no passphrase, a KMS key per stack", "drift.yml", f"      - name: {KMS_GUARD}\n", "      - name: no check\n"),
    (
        "pulumi about and the plan's digest",
        "drift.yml",
        '            pulumi about --stack "$STACK" 2>&1 || echo "pulumi about failed (exit $?)"\n',
        "",
    ),
    (
        "pulumi about and the plan's digest",
        "pulumi-up.yml",
        '          echo "Update plan applied: sha256 \\`$PLAN_DIGEST\\`" >> "$GITHUB_STEP_SUMMARY"\n',
        "",
    ),
    (
        "drift: read-only, one issue per stack",
        "drift.yml",
        "      contents: read # check out the program\n",
        "      contents: read # check out the program\n      issues: write\n",
    ),
    (
        "drift: read-only, one issue per stack",
        "drift.yml",
        "          service_account: ${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}",
        "          service_account: ${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}",
    ),
    ("drift: read-only, one issue per stack", "drift.yml", "--preview-only --expect-no-changes", "--yes"),
    (
        "drift: read-only, one issue per stack",
        "drift.yml",
        "            environment: prod-preview",
        "            environment: prod",
    ),
    ("drift: read-only, one issue per stack", "drift.yml", "creator: 'github-actions[bot]',", ""),
    (
        "only writing jobs in the stack's environment",
        "deploy.yml",
        "preview-environment: dev-preview",
        "preview-environment: dev",
    ),
    ("only writing jobs in the stack's environment", "drift.yml", "environment: dev-preview", "environment: dev"),
    (
        "only writing jobs in the stack's environment",
        "pulumi-up.yml",  # `migrate --apply` before the approval
        "    environment: ${{ inputs.stack }}\n",
        "    environment: ${{ inputs.preview-environment }}\n",
    ),
    (
        "only writing jobs in the stack's environment",
        "pulumi-up.yml",  # the deployer in the preview
        "service_account: ${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}",
        "service_account: ${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}",
    ),
    (
        "only writing jobs in the stack's environment",
        "pull-request.yml",  # a pull request's preview as the deployer
        "service_account: ${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}",
        "service_account: ${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}",
    ),
]


@pytest.mark.parametrize(("rule", "name", "old", "new"), BROKEN_DELIVERY)
def test_each_delivery_rule_fails_on_a_broken_copy(tmp_path: Path, rule: str, name: str, old: str, new: str) -> None:
    folder = broken_copy(tmp_path, name, old, new)
    with pytest.raises((AssertionError, StopIteration, ValueError, KeyError)):
        DELIVERY_RULES[rule](folder)


def test_main_deploys_dev_then_prod_and_every_job_refuses_an_old_commit_first() -> None:
    document = workflow("deploy.yml")
    assert document["on"] == {"push": {"branches": ["main"]}}
    jobs = document["jobs"]
    assert {job_id: job["with"]["stack"] for job_id, job in jobs.items()} == {"dev": "dev", "prod": "prod"}
    assert {job["with"]["preview-environment"] for job in jobs.values()} == {"dev-preview", "prod-preview"}
    assert jobs["prod"]["needs"] == "dev"
    assert all(job["uses"] == "./.github/workflows/pulumi-up.yml" and "secrets" not in job for job in jobs.values())
    called = workflow("pulumi-up.yml")["jobs"]
    for job in called.values():
        assert "github.ref == 'refs/heads/main'" in job["if"]
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert [step.get("name") for step in steps(job)].index(HEAD_CHECK) == 1  # before any credential
    # The migration plan reads rows as the planner; previews read state as the read-only identity; only the
    # approved jobs have the deployer.
    identities = [s["with"]["service_account"] for s in steps(called["preview"]) if "auth@" in s.get("uses", "")]
    assert identities == ["${{ vars.GCP_PLAN_SERVICE_ACCOUNT }}", "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}"]
    for job_id in ("migrate", "up"):
        auth = step_using(called[job_id], "google-github-actions/auth")["with"]
        assert auth["service_account"] == "${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}"
    installer = step_using(called["preview"], "pulumi/actions")["with"]
    assert "command" not in installer  # pulumi/actions README "Installation Only": no command installs the CLI
    for job in called.values():
        for step in steps(job):
            if GATE in step.get("run", "") or "infra.cli migrate" in step.get("run", ""):
                assert step["shell"] == "bash"  # -eo pipefail: the exit status is not lost in the pipe


def _run_step(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **env}
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _step_named(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step in steps(job) if step.get("name") == name)


def test_the_kms_check_is_the_same_everywhere_and_refuses_a_stack_without_its_key(tmp_path: Path) -> None:
    """The stack file a run may use: `secretsprovider` in gocloud.dev's gcpkms URL form
    (gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K; pulumi stack init --help) and the `encryptedkey`
    pkg/secrets/cloud/manager.go NewCloudSecretsManager writes beside it. Without `encryptedkey` the CLI would
    make a new data key on every run (`info.EncryptedKey == ""` generates one), which a decrypt-only identity
    cannot (Encrypt) and which would not be the key of the stack's state."""
    scripts = {
        _step_named(job, KMS_GUARD)["run"]
        for _, _, job in all_jobs(WORKFLOWS)
        if any(s.get("name") == KMS_GUARD for s in steps(job))
    }
    [script] = scripts
    committed = (REPO_ROOT / "Pulumi.prod.yaml").read_text()
    url = re.search(r"^secretsprovider: (\S+)$", committed, re.M)
    assert url and re.fullmatch(r"gcpkms://projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+", url[1])
    # A base64 data key as the CLI writes it (base64.StdEncoding of the KMS ciphertext); not a real one.
    with_key = committed.replace(url[0], f"{url[0]}\nencryptedkey: CiQAg6xNp1NwfShHvFC7nFVt+ZbTqg/zB1nB4cdvL1qPWmM=")
    cases = {
        "with its key": (with_key, 0),
        "without encryptedkey": (committed, 1),
        # What `pulumi stack select --create --secrets-provider passphrase` leaves (passphrase/manager.go
        # NewPromptingPassphraseSecretsManager clears secretsprovider and encryptedkey, writes encryptionsalt).
        "a local passphrase stack": (
            committed.replace(url[0], "encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y2lwaGVy"),
            1,
        ),
    }
    for case, (text, expected) in cases.items():
        (tmp_path / "Pulumi.prod.yaml").write_text(text)
        result = _run_step(script, {"STACK": "prod"}, tmp_path)
        assert result.returncode == expected, case
        if expected:
            assert "::error file=Pulumi.prod.yaml::Pulumi.prod.yaml names no gcpkms:// secretsprovider" in result.stdout
            assert 'runbook "Move a stack\'s secrets to Cloud KMS"' in result.stdout


def test_the_committed_stack_files_name_a_cloud_kms_key_each() -> None:
    """Read from the commit, not the working copy: a newcomer's local passphrase stack rewrites the file there."""
    urls = {}
    for stack in STACKS:
        text = subprocess.run(
            ["git", "show", f"HEAD:Pulumi.{stack}.yaml"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout
        document = yaml.safe_load(text)
        assert "encryptionsalt" not in document, stack
        urls[stack] = document["secretsprovider"]
        assert re.fullmatch(r"gcpkms://projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+", urls[stack])
    assert len(set(urls.values())) == len(urls)  # one key per stack: who may decrypt prod is prod's IAM alone


def test_the_preview_tells_the_next_jobs_whether_tables_are_to_migrate(tmp_path: Path) -> None:
    """The dry run's JSON lists each table with its `status` (infra/bigquery_edge/live_migrate.py: "nothing", "planned",
    "refused"; a refused table fails the step before this line)."""
    step = next(s for s in steps(workflow("pulumi-up.yml")["jobs"]["preview"]) if s.get("id") == "migration")
    line = next(line for line in step["run"].splitlines() if line.startswith("migrating="))
    for statuses, expected in ((["nothing", "nothing"], "false"), (["nothing", "planned"], "true")):
        report = {"tables": [{"table": f"tenants.t{i}", "status": status} for i, status in enumerate(statuses)]}
        (tmp_path / "migration.json").write_text(json.dumps(report))
        output = tmp_path / "output"
        result = _run_step(
            f'{line}\necho "migrating=$migrating" > "$GITHUB_OUTPUT"',
            {"RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(output)},
            tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert output.read_text() == f"migrating={expected}\n"


def test_up_refuses_a_plan_whose_digest_is_not_the_gated_one(tmp_path: Path) -> None:
    step = _step_named(workflow("pulumi-up.yml")["jobs"]["up"], "Refuse a plan that is not the one gated and approved")
    plan = tmp_path / "plan" / "plan.json"
    plan.parent.mkdir()
    plan.write_text('{"resourcePlans": {}}\n')
    digest = hashlib.sha256(plan.read_bytes()).hexdigest()
    summary = tmp_path / "summary"
    env = {"RUNNER_TEMP": str(tmp_path), "GITHUB_STEP_SUMMARY": str(summary)}
    assert _run_step(step["run"], env | {"PLAN_DIGEST": digest}, tmp_path).returncode == 0
    assert summary.read_text() == f"Update plan applied: sha256 `{digest}`\n"
    plan.write_text('{"resourcePlans": {"urn:pulumi:prod::x": {}}}\n')  # another plan, e.g. a later upload
    refused = _run_step(step["run"], env | {"PLAN_DIGEST": digest}, tmp_path)
    assert refused.returncode == 1
    assert f"is not the update plan gated in this run (sha256 {digest})" in refused.stdout
    missing = _run_step(step["run"], env | {"PLAN_DIGEST": ""}, tmp_path)
    assert missing.returncode == 1 and "(sha256 missing)" in missing.stdout


def test_every_artifact_upload_survives_a_rerun_of_its_job() -> None:
    """A re-run attempt is the same workflow run, and upload-artifact v4 fails on a name the run already has
    unless `overwrite` is on (actions/upload-artifact v4.6.2 action.yml, input `overwrite`: "If false, the
    action will fail if an artifact for the given name already exists"; src/upload/upload-artifact.ts
    `deleteArtifactIfExists`). Without it, re-running a deploy after a failed `up`, which the README says
    to do, would stop at the plan's upload before anything was planned again."""
    uploads = [
        (name, job_id, step)
        for name, job_id, job in all_jobs(WORKFLOWS)
        for step in steps(job)
        if step.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert len(uploads) >= 4  # the pull-request report, the two plans, the drift results
    for name, job_id, step in uploads:
        assert step["with"].get("overwrite") is True, f"{name} {job_id}: {step['with']['name']}"


def test_the_plan_artifact_holds_secrets_only_encrypted_and_the_readme_says_who_may_read_it() -> None:
    """`preview --save-plan` writes secret values as ciphertext of the stack's secrets manager unless
    `--show-secrets` is passed (pulumi/pulumi pkg/cmd/pulumi/operations/preview.go: `plan.Write(planFilePath,
    plan, encrypter, showSecrets)`; pkg/resource/stack/deployment.go `SerializePropertyValue`), but the rest
    of each resource's state is in it in the clear (pkg/resource/stack/plan.go `SerializeResourcePlan`:
    outputs, input diffs, config). An artifact can be downloaded by whoever may read the repository
    (actions/upload-artifact action.yml, output `artifact-url`), so the README says what that shows them."""
    for path in sorted(WORKFLOWS.glob("*.yml")):
        assert "--show-secrets" not in path.read_text(), path.name
    jobs = workflow("pulumi-up.yml")["jobs"]
    kept = {
        step_using(jobs[job_id], "actions/upload-artifact")["with"]["retention-days"]
        for job_id in ("preview", "migrate")
    }
    readme = (REPO_ROOT / "README.md").read_text()
    delivery = readme[readme.index("**Deploys**") : readme.index("One-time repository set-up")]
    said = re.search(r"\*\*What the plan artifact reveals\.\*\*(.*?)\n\n", delivery, re.DOTALL)
    assert said, "README Delivery: no paragraph on what the plan artifact reveals"
    text = " ".join(said.group(1).split())
    days = re.search(r"while it is kept, (\d+) days", text)
    assert days and kept == {int(days.group(1))}, kept
    for fact in ("outputs as the refreshed state has them", "only as ciphertext", "`--show-secrets`"):
        assert fact in text, fact


def test_a_rerun_for_a_commit_that_is_no_longer_the_head_of_main_is_refused(tmp_path: Path) -> None:
    """The head-of-main step of pulumi-up.yml with a stand-in `gh` that prints the head of main."""
    script = _step_named(workflow("pulumi-up.yml")["jobs"]["up"], HEAD_CHECK)["run"]
    fake = tmp_path / "bin"
    fake.mkdir()

    def run(head_of_main: str, sha: str) -> subprocess.CompletedProcess[str]:
        (fake / "gh").write_text(f"#!/bin/sh\necho {head_of_main}\n")
        (fake / "gh").chmod(0o755)
        env = {"PATH": f"{fake}:/usr/bin:/bin", "GITHUB_SHA": sha, "GITHUB_REPOSITORY": "acme/tenant-bigquery"}
        return _run_step(script, env, tmp_path)

    old, new = "a" * 40, "b" * 40
    refused = run(head_of_main=new, sha=old)
    assert refused.returncode == 1
    assert f"::error::{old} is no longer the head of main ({new})" in refused.stdout
    assert run(head_of_main=old, sha=old).returncode == 0


def test_nothing_that_changes_a_stack_is_ever_cancelled() -> None:
    """`migrate --apply` and `up` share one group per stack, queued, never cancelled halfway (a cancelled
    update leaves a locked, half-applied stack; a cancelled migration a table in the middle of a rebuild)."""
    groups = []
    for name, _, job in all_jobs(WORKFLOWS):
        writes = any(
            re.match(r"pulumi (up|refresh --stack \"\$STACK\" --yes)", c)
            for s in steps(job)
            for c in pulumi_commands(s)
        ) or any('migrate --stack "$STACK" --apply' in s.get("run", "") for s in steps(job))
        if writes:
            assert workflow(name).get("concurrency", {}).get("cancel-in-progress") is not True, name
            groups.append(job["concurrency"])
    assert groups == [{"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}] * 2


def _drift_issue(tmp_path: Path, result: dict[str, Any], issues: list[dict[str, Any]], refresh: str = "") -> Any:
    """Run drift.yml's script under node with stand-ins for github-script's `github`, `context` and `core`;
    return the calls it made. The artifact is what `detect` writes: result.json from its jq line, the two
    outputs as printed."""
    [report] = [workflow("drift.yml")["jobs"]["report"]]
    script = step_using(report, "actions/github-script")["with"]["script"]
    drift = tmp_path / "drift"
    drift.mkdir(exist_ok=True)
    (drift / "result.json").write_text(json.dumps(result))
    (drift / "refresh.txt").write_text(refresh)
    (drift / "verify.json").write_text('{"checks": []}\n')
    harness = tmp_path / "harness.js"
    harness.write_text(
        "const calls = [];\n"
        "const record = (name) => async (args) => { calls.push([name, args]); return { data: {} }; };\n"
        "const github = {\n"
        "  rest: { issues: { listForRepo: 'list', create: record('create'), update: record('update'),\n"
        "                    createComment: record('comment') } },\n"
        f"  paginate: async (method, args) => {{ calls.push(['list', args]); return {json.dumps(issues)}; }},\n"
        "};\n"
        "const context = { repo: { owner: 'acme', repo: 'tenant-bigquery' } };\n"
        "const core = { setFailed: (m) => calls.push(['failed', m]) };\n"
        f"(async () => {{\n{script}\n}})().then(() => process.stdout.write(JSON.stringify(calls)));\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DRIFT_DIR": str(drift), "STACK": "prod", "RUN_URL": "https://run/1"}
    return json.loads(
        subprocess.run(["node", str(harness)], env=env, capture_output=True, text=True, check=True).stdout
    )


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs github-script's JavaScript")
def test_drift_opens_one_issue_per_stack_edits_it_in_place_and_closes_it_when_gone(tmp_path: Path) -> None:
    sha = "d" * 40
    drifted = {"stack": "prod", "sha": sha, "refresh": 255, "verify": 1}
    marker = "<!-- tenant-bigquery:drift:prod -->"
    [listed, (kind, created)] = _drift_issue(tmp_path, drifted, [])
    assert listed[1] == {
        "owner": "acme",
        "repo": "tenant-bigquery",
        "state": "all",
        "creator": "github-actions[bot]",
        "per_page": 100,
    }
    assert kind == "create" and created["title"] == "Drift in stack prod"
    assert created["body"].startswith(f"{marker}\n")
    # Newest first, as the API lists them; dev's issue and a pull request are never taken for prod's.
    issues = [
        {"number": 9, "state": "open", "body": "<!-- tenant-bigquery:drift:dev -->\n..."},
        {"number": 8, "state": "open", "body": f"{marker}\n...", "pull_request": {}},
        {"number": 7, "state": "closed", "body": f"{marker}\nold"},
    ]
    [_, (kind, updated)] = _drift_issue(tmp_path, drifted, issues)
    assert kind == "update" and updated["issue_number"] == 7 and updated["state"] == "open"
    issues[2]["state"] = "open"
    clean = {"stack": "prod", "sha": sha, "refresh": 0, "verify": 0}
    [_, (comment, said), (close, closed)] = _drift_issue(tmp_path, clean, issues)
    assert (comment, close) == ("comment", "update") and said["issue_number"] == closed["issue_number"] == 7
    assert closed["state"] == "closed" and closed["state_reason"] == "completed"
    issues[2]["state"] = "closed"
    assert _drift_issue(tmp_path, clean, issues) == [["list", listed[1]]]  # nothing to close: no call
    wrong = _drift_issue(tmp_path, drifted | {"stack": "dev"}, issues)
    assert wrong == [["failed", "the artifact is no drift result of stack prod"]]


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs github-script's JavaScript")
def test_drift_output_is_posted_as_fenced_text_it_cannot_escape(tmp_path: Path) -> None:
    hostile = '~ description: "```\\n## Approved @acme/admins <img src=x> `````"\n```\n# closed\n'
    result = {"stack": "prod", "sha": "e" * 40, "refresh": 255, "verify": 0}
    [_, (_, created)] = _drift_issue(tmp_path, result, [], refresh=hostile)
    lines = created["body"].splitlines()
    fence = "`" * 6  # longer than the longest backtick run inside (5)
    start = lines.index(f"{fence}text")
    end = lines.index(fence, start)
    assert lines[start + 1 : end] == [*hostile.splitlines(), ""]  # the output's own last newline
    # No line inside can close the fence: a closing fence needs at least as many backticks (CommonMark 4.5).
    assert not any(line.strip().startswith(fence) for line in lines[start + 1 : end])


def _checkout_with_a_dropped_column(tmp_path: Path) -> tuple[Path, str]:
    """A checkout of this repository's code with the fixture's declarations, whose last commit drops a top-level
    column of a prod table."""
    checkout = tmp_path / "pull-request"
    checkout.mkdir()
    shutil.copytree(REPO_ROOT / "infra", checkout / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("stacks", "schemas"):
        shutil.copytree(FIXTURE_ROOT / folder, checkout / folder)
    for stack_file in FIXTURE_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, checkout / stack_file.name)

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(command, cwd=checkout, capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    base = git("rev-parse", "HEAD")
    schema = checkout / "schemas" / "tenants" / "tenant_profiles.json"
    columns = [c for c in json.loads(schema.read_text()) if c["name"] != "legal_name"]
    schema.write_text(json.dumps(columns, indent=2))
    git("commit", "-q", "-am", "drop legal_name")
    return checkout, base


def _run_gate(checkout: Path, base: str) -> subprocess.CompletedProcess[str]:
    """The gate's step as the workflow runs it: the base's tool in `trusted/`, the pull request beside it."""
    [gate] = workflow("prod-data-gate.yml")["jobs"].values()
    step = next(step for step in steps(gate) if "infra.cli diff" in step.get("run", ""))
    trusted = checkout.parent / step["working-directory"]
    if not trusted.exists():
        trusted.mkdir()
        shutil.copytree(REPO_ROOT / "infra", trusted / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    # `python` is this virtualenv's, as setup-python + pip install make it in CI.
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "BASE_SHA": base, "HOME": str(checkout)}
    return subprocess.run(
        ["bash", "-c", step["run"]], cwd=trusted, env=env, capture_output=True, text=True, check=False
    )


def test_the_prod_gate_refuses_an_unapproved_in_place_data_loss_and_passes_once_approved(tmp_path: Path) -> None:
    checkout, base = _checkout_with_a_dropped_column(tmp_path)
    refused = _run_gate(checkout, base)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "update-destructive" in refused.stdout

    prod = checkout / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text() + "  tenant-bigquery:approveDataLoss:\n    - tenants.tenant_profiles\n")
    approved = _run_gate(checkout, base)
    assert approved.returncode == 0, approved.stdout + approved.stderr


def test_the_prod_gate_runs_the_base_commits_code_and_reads_the_pull_request_as_data(tmp_path: Path) -> None:
    """A pull request that rewrites infra/ to pass everything still fails the gate: that code is never run."""
    checkout, base = _checkout_with_a_dropped_column(tmp_path)
    (checkout / "infra" / "cli" / "__main__.py").write_text("import sys\nsys.exit(0)\n")
    refused = _run_gate(checkout, base)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    document = workflow("prod-data-gate.yml")
    assert document["on"] == {"pull_request": {"branches": ["main"]}}
    [gate] = document["jobs"].values()
    checkouts = [step["with"] for step in steps(gate) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts[0] == {
        "ref": "${{ github.event.pull_request.base.sha }}",
        "path": "trusted",
        "persist-credentials": False,
    }
    assert checkouts[1]["path"] == "pull-request"


def _post_comment(tmp_path: Path, report: str) -> str:
    """Run pr-comment.yml's script under node with stand-ins for github-script's `github`, `context` and `core`."""
    script = step_using(next(iter(workflow("pr-comment.yml")["jobs"].values())), "actions/github-script")["with"]
    report_dir = tmp_path / "pr-report"
    report_dir.mkdir()
    (report_dir / "pr-number").write_text("7\n")
    (report_dir / "body.md").write_text(report)
    harness = tmp_path / "harness.js"
    harness.write_text(
        "const posted = [];\n"
        "const github = {\n"
        "  rest: {\n"
        "    pulls: { get: async () => ({ data: { head: { sha: process.env.HEAD_SHA } } }) },\n"
        "    issues: {\n"
        "      listComments: 'list',\n"
        "      createComment: async (args) => posted.push(args.body),\n"
        "      updateComment: async (args) => posted.push(args.body),\n"
        "    },\n"
        "  },\n"
        "  paginate: async () => [],\n"
        "};\n"
        "const context = { repo: { owner: 'acme', repo: 'tenant-bigquery' } };\n"
        "const core = { setFailed: (m) => { throw new Error(m); }, notice: () => {} };\n"
        f"(async () => {{\n{script['script']}\n}})().then(() => process.stdout.write(posted[0]));\n"
    )
    env = {"PATH": "/usr/bin:/bin", "REPORT_DIR": str(report_dir), "HEAD_SHA": "c" * 40, "RUN_URL": "https://run"}
    result = subprocess.run(["node", str(harness)], env=env, capture_output=True, text=True, check=True)
    return result.stdout


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs github-script's JavaScript")
def test_a_forks_report_is_posted_as_untrusted_fenced_text_it_cannot_escape(tmp_path: Path) -> None:
    hostile = "```\n\n## ✅ Approved by the platform team\n\n<img src=x> @acme/admins ````` still inside\n"
    body = _post_comment(tmp_path, hostile)
    lines = body.splitlines()
    assert lines[0] == "<!-- tenant-bigquery:pr-report -->"
    assert lines[1] == f"### Untrusted output of this pull request's code ({'c' * 7})"
    fence = "`" * 6  # longer than the longest backtick run inside (5)
    assert lines.index(f"{fence}text") < lines.index("## ✅ Approved by the platform team")
    assert lines[-1] == fence
    # No line inside can close the fence: a closing fence needs at least as many backticks (CommonMark 4.5).
    inside = lines[lines.index(f"{fence}text") + 1 : -1]
    assert not any(line.strip().startswith(fence) for line in inside)


def _codeowners() -> dict[str, list[str]]:
    rules = {}
    for line in (REPO_ROOT / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *owners = line.split()
            rules[pattern] = owners
    return rules


def test_code_owners_review_what_deploys_and_what_gates_a_deploy() -> None:
    rules = _codeowners()
    for path in ("/.github/", "/policies/", "/infra/", "/stacks/", "/schemas/", "/Pulumi.prod.yaml"):
        assert rules.get(path), f"CODEOWNERS names no owner for {path}"
        assert all(owner.startswith("@") for owner in rules[path])


def _setup_table() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("One-time repository set-up")
    return readme[start : readme.index("\n\n**Policy pack**", start)]


def test_the_readme_set_up_checklist_names_every_variable_secret_and_environment_the_workflows_use() -> None:
    table = _setup_table()
    used: set[str] = set()
    for path in WORKFLOWS.glob("*.yml"):
        used |= set(re.findall(r"\b(?:vars|secrets)\.([A-Z_]+)", path.read_text()))
    used.discard("GITHUB_TOKEN")
    assert used, "the workflows use variables and secrets"
    for name in sorted(used):
        assert f"`{name}`" in table, f"README set-up does not say where {name} comes from"
    for environment in ("dev-preview", "dev", "prod-preview", "prod"):
        assert f"| environment `{environment}` |" in table
    # Previews read state only: a DIY backend's Preview takes no lock (pulumi/pulumi pkg/backend/diy/backend.go:
    # diyBackend.Preview calls backend.Preview with b.apply, while Update, Refresh, Destroy and Import call b.Lock).
    preview_row = next(line for line in table.splitlines() if line.startswith("| `GCP_PREVIEW_SERVICE_ACCOUNT`"))
    assert "Storage Object Viewer" in preview_row and "write" not in preview_row
    assert "assertion.repository_id" in table and "assertion.repository_owner_id" in table


def test_the_readme_binds_each_identity_to_exactly_the_environments_whose_jobs_take_it() -> None:
    """A job can take every identity bound to its token's `environment` claim (the set-up's attribute mapping
    `attribute.environment=assertion.environment`), not just the one its auth step names: so each service
    account's Workload Identity User bindings are exactly the environments of the jobs that use it, and `dev`,
    like `prod`, binds only the deployer."""
    used: dict[str, set[str]] = {}
    for name, _, values, job in job_instances(WORKFLOWS):
        for identity in identities(job):
            variable = identity.removeprefix("${{ vars.").removesuffix(" }}")
            if "environment" in job:
                used.setdefault(variable, set()).add(environment_of(job, values))
            else:
                assert set(workflow(name)["on"]) == {"pull_request"}
                used.setdefault(variable, set()).add("pull_request")
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in _setup_table().splitlines()}
    bound: dict[str, set[str]] = {}
    for variable, environments in used.items():
        row = rows[f"`{variable}`"]
        bound[variable] = set(re.findall(r"attribute\.environment/([\w-]+)`", row))
        bound[variable] |= set(re.findall(r"attribute\.event_name/(pull_request)`", row))
        assert bound[variable] == environments, f"README binds {variable} to {sorted(bound[variable])}"
    for stack in STACKS:
        assert {v for v, envs in bound.items() if stack in envs} == {"GCP_DEPLOY_SERVICE_ACCOUNT"}, stack
        assert "keeps only the deployer" in rows[f"environment `{stack}`"]


def test_the_readme_set_up_makes_review_impossible_to_skip() -> None:
    lines = _setup_table().splitlines()

    def row(first_cell: str) -> str:
        return next(line for line in lines if line.startswith(f"| {first_cell} |"))

    ruleset = row("branch ruleset of `main`")
    for setting in (
        '"Require review from Code Owners"',
        "no bypass list (administrators included)",
        "1 required approval",
    ):
        assert setting in ruleset
    required = row("required workflow")
    assert '"Require workflows to pass before merging": `.github/workflows/prod-data-gate.yml`' in required
    assert "`refs/heads/main`" in required
    prod = row("environment `prod`")
    assert "required reviewers" in prod
    assert '"Prevent self-review" on' in prod
    assert '"Allow administrators to bypass configured protection rules" off' in prod
    assert "deployment branches: `main` only" in prod


# The first Pulumi version with each flag the workflows pass: pulumi/pulumi changelog/3.256.0.md (#24053)
# adds `--ignore-protect` to `pulumi up`, `preview` and `destroy`.
FLAG_INTRODUCED = {"--ignore-protect": (3, 256, 0)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_readme_minimum_pulumi_version_has_every_flag_the_workflows_pass_and_ci_pins_at_least_it() -> None:
    found = re.search(r"the Pulumi CLI \(>= ([0-9]+\.[0-9]+\.[0-9]+)", (REPO_ROOT / "README.md").read_text())
    assert found, "README Prerequisites names no minimum Pulumi CLI version"
    minimum = _version(found.group(1))
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text()
        for flag, introduced in FLAG_INTRODUCED.items():
            if flag in text:
                assert minimum >= introduced, f"{path.name} passes {flag}, new in {introduced}; README: {minimum}"
        for pinned in re.findall(r'PULUMI_VERSION: "([0-9.]+)"', text):
            assert _version(pinned) >= minimum, f"{path.name} pins Pulumi {pinned}, below README's {minimum}"


def test_the_readme_says_which_steps_run_before_and_after_the_approval_and_how_to_move_a_stack_to_kms() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    delivery = readme[readme.index("**Deploys**") : readme.index("One-time repository set-up")]
    jobs = workflow("pulumi-up.yml")["jobs"]
    for job_id, when in (
        ("preview", "before any approval"),
        ("migrate", "after the approval"),
        ("up", "after the approval"),
    ):
        assert f"`{job_id}`, **{when}**" in delivery
    assert "Why the approval sits there" in delivery and set(jobs) == {"preview", "migrate", "up"}
    script = step_using(workflow("drift.yml")["jobs"]["report"], "actions/github-script")["with"]["script"]
    assert "<!-- tenant-bigquery:drift:<stack> -->" in delivery and "tenant-bigquery:drift:${stack}" in script
    runbook = readme[readme.index("### Move a stack's secrets to Cloud KMS") :]
    assert 'pulumi stack change-secrets-provider --stack prod "gcpkms://projects/' in runbook
    main_job = readme[readme.index("<!-- deploy -->") : readme.index("What a stack sets")]
    assert "pulumi stack select --create dev --secrets-provider passphrase" in main_job  # the local path, no KMS
    table = _setup_table()
    assert "| Cloud KMS keys |" in table and "variable of the environment `prod-preview` (prod's reader" in table


def _secure_values(value: Any) -> list[Any]:
    """The `secure:` entries of a stack file's config, nested objects and lists included."""
    if isinstance(value, dict):
        return [value] if set(value) == {"secure"} else [s for v in value.values() for s in _secure_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in _secure_values(v)]
    return []


def test_the_readme_local_path_says_how_to_get_a_restored_stack_file_back_to_its_passphrase() -> None:
    """After `git restore Pulumi.dev.yaml` the file names dev's KMS key, so a command on the local stack calls KMS
    and fails without access (pulumi/pulumi pkg/cmd/pulumi/stack/secrets.go SecretsManagerLoader.GetSecretsManager
    takes the cloud branch for any `secretsprovider` but passphrase or default; pkg/secrets/cloud/manager.go
    NewCloudSecretsManager decrypts the `encryptedkey`, or calls generateNewDataKey when there is none);
    `stack select --create` leaves an existing stack's provider alone (stack_select.go: --secrets-provider
    only for a stack it creates). `pulumi stack change-secrets-provider passphrase` gets it back without KMS
    (stack_change_secrets_provider.go Run): it builds the old provider's decrypter only when the stack file holds a
    secure value (Config.HasSecureValue, else config.NewPanicCrypter), so the committed file must hold none; the
    new salt comes from PULUMI_CONFIG_PASSPHRASE (passphrase/manager.go NewPromptingPassphraseSecretsManager clears
    secretsprovider and encryptedkey; readPassphrase reads the variable); the state's secrets are decrypted with
    the provider the state records (migrateOldConfigAndCheckpointToNewSecretsProvider, DeserializeUntypedDeployment
    with backend/secrets DefaultProvider: the passphrase, with the salt from the state)."""
    readme = (REPO_ROOT / "README.md").read_text()
    local = readme[readme.index("<!-- deploy -->") : readme.index("For a team, use a shared backend")]
    assert "git restore Pulumi.dev.yaml" in local and "fail on KMS" in local
    back = local[local.index("git restore Pulumi.dev.yaml") :]
    assert "export PULUMI_CONFIG_PASSPHRASE=" in back
    assert back.index("export PULUMI_CONFIG_PASSPHRASE=") < back.index(
        "pulumi stack change-secrets-provider --stack dev passphrase"
    )
    # Out of commits: staged by path, set aside with its salt kept, and refused by the checks if committed anyway.
    assert "git diff --cached -- Pulumi.dev.yaml" in local and "git stash push -- Pulumi.dev.yaml" in local
    assert "test_the_committed_stack_files_name_a_cloud_kms_key_each" in local
    assert "(`git restore Pulumi.dev.yaml` when you" not in local  # the advice that lost the salt
    committed = subprocess.run(
        ["git", "show", "HEAD:Pulumi.dev.yaml"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert _secure_values(yaml.safe_load(committed).get("config", {})) == [], "the way back would need dev's KMS key"
