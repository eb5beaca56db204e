"""GitHub Actions workflows: linted offline by zizmor, plus the delivery rules no linter knows.

zizmor (pinned in requirements-dev.txt, a binary wheel) validates each workflow against GitHub's schema
(`--strict-collection` makes a schema error fatal) and audits it: template injection, unpinned actions,
excessive permissions, credentials persisted by checkout, dangerous triggers.
"""

from __future__ import annotations

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


def workflow(name: str) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
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
    # Pull-request code runs in the preview: only dev's passphrase, never prod's, and the read-only identity.
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == ["dev"]
    preview = step_using(jobs["preview"], "pulumi/actions")
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["comment-on-pr"] is True
    assert preview["with"]["policyPacks"] == "policies"
    assert preview["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    assert preview["env"] == {"PULUMI_CONFIG_PASSPHRASE": "${{ secrets.PULUMI_CONFIG_PASSPHRASE_DEV }}"}
    auth = step_using(jobs["preview"], "google-github-actions/auth")["with"]
    assert auth["service_account"] == "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}"
    assert all((REPO_ROOT / "policies" / "config" / f"{stack}.json").is_file() for stack in STACKS)


def test_no_workflow_outside_the_prod_environments_can_read_prods_passphrase() -> None:
    """Repository secrets reach every workflow, pull requests included: prod's passphrase is only an
    environment secret of the main-only environments prod-preview and prod, read through pulumi-up.yml."""
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text()
        assert "PULUMI_CONFIG_PASSPHRASE_PROD" not in text, path.name
        if "secrets.PULUMI_CONFIG_PASSPHRASE }}" in text:
            assert path.name == "pulumi-up.yml"
    for job in workflow("pulumi-up.yml")["jobs"].values():
        assert job["environment"] in {"${{ inputs.stack }}", "${{ inputs.preview-environment }}"}
    callers = workflow("deploy.yml")["jobs"].values()
    assert {job["with"]["preview-environment"] for job in callers} == {"dev", "prod-preview"}
    assert all("secrets" not in job for job in callers)


def test_the_comment_workflow_never_runs_pull_request_code() -> None:
    document = workflow("pr-comment.yml")
    assert document["on"] == {
        "workflow_run": {"workflows": [workflow("pull-request.yml")["name"]], "types": ["completed"]}
    }
    [job] = document["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert [step["uses"].split("@")[0] for step in steps(job)] == ["actions/download-artifact", "actions/github-script"]
    assert all("run" not in step for step in steps(job))
    download = step_using(job, "actions/download-artifact")["with"]
    assert download["name"] == "pr-report"
    assert download["run-id"] == "${{ github.event.workflow_run.id }}"
    script = step_using(job, "actions/github-script")["with"]["script"]
    assert "<!-- tenant-bigquery:pr-report -->" in script  # the hidden marker that finds the comment again
    assert "pull.head.sha !== process.env.HEAD_SHA" in script  # the artifact's number must be this run's pull request
    assert "updateComment" in script and "createComment" in script


HEAD_CHECK = "Refuse a commit that is no longer the head of main"
GATE = 'preview-gate --stack "$STACK" "$RUNNER_TEMP/preview.json"'


def test_main_deploys_dev_then_prod_each_gated_by_a_preview_before_any_approval() -> None:
    document = workflow("deploy.yml")
    assert document["on"] == {"push": {"branches": ["main"]}}
    jobs = document["jobs"]
    assert {job_id: job["with"]["stack"] for job_id, job in jobs.items()} == {"dev": "dev", "prod": "prod"}
    assert jobs["prod"]["needs"] == "dev"
    assert all(job["uses"] == "./.github/workflows/pulumi-up.yml" for job in jobs.values())
    called = workflow("pulumi-up.yml")["jobs"]
    preview, up = called["preview"], called["up"]
    # The `up` waits for the preview; only the `up` runs in the stack's environment (prod: required reviewers).
    assert up["needs"] == "preview"
    assert up["environment"] == "${{ inputs.stack }}"
    assert preview["environment"] == "${{ inputs.preview-environment }}"
    for job in (preview, up):
        assert job["if"] == "github.ref == 'refs/heads/main'"
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        names = [step.get("name") for step in steps(job)]
        assert names.index(HEAD_CHECK) == 1  # right after the checkout, before any credential
    # The migration plan reads rows as the planner; the preview reads state with the read-only identity;
    # only the `up` has the deployer.
    preview_steps = steps(preview)
    identities = [
        s["with"]["service_account"] for s in preview_steps if "google-github-actions/auth" in s.get("uses", "")
    ]
    assert identities == ["${{ vars.GCP_PLAN_SERVICE_ACCOUNT }}", "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}"]
    up_auth = step_using(up, "google-github-actions/auth")["with"]
    assert up_auth["service_account"] == "${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}"
    installer = step_using(preview, "pulumi/actions")["with"]
    assert "command" not in installer  # pulumi/actions README "Installation Only": no command installs the CLI
    runs = [step.get("run", "") for step in preview_steps]
    planned = next(i for i, run in enumerate(runs) if "infra.cli migrate --stack" in run)
    [gated] = [i for i, run in enumerate(runs) if GATE in run]
    assert planned < gated and "--apply" not in runs[planned]
    assert '--migration "$RUNNER_TEMP/migration.json"' in runs[gated]
    assert 'pulumi preview --stack "$STACK" --json --ignore-protect --policy-pack policies' in runs[gated]
    assert preview_steps[gated]["shell"] == "bash"  # -eo pipefail: the gate's exit status is not lost in the pipe
    # After the approval: migrate, gate a refreshed preview without the migration allowance, then up.
    up_steps = steps(up)
    up_runs = [step.get("run", "") for step in up_steps]
    applied = next(i for i, run in enumerate(up_runs) if 'migrate --stack "$STACK" --apply' in run)
    regated = next(i for i, run in enumerate(up_runs) if GATE in run)
    assert "--migration" not in up_runs[regated] and "--refresh" in up_runs[regated]
    # The engine's own refusal of a protected replace or delete stays on once the tables are migrated.
    assert "--ignore-protect" not in up_runs[regated]
    assert up_steps[applied]["shell"] == up_steps[regated]["shell"] == "bash"
    deploy = next(i for i, step in enumerate(up_steps) if step.get("with", {}).get("command") == "up")
    assert applied < regated < deploy
    action = up_steps[deploy]["with"]
    assert action["refresh"] is True
    assert action["command"] == "up"
    assert action["policyPacks"] == "policies"
    assert action["policyPackConfigs"] == "policies/config/${{ inputs.stack }}.json"


def _run_head_check(tmp_path: Path, head_of_main: str, sha: str) -> subprocess.CompletedProcess[str]:
    """The head-of-main step of pulumi-up.yml with a stand-in `gh` that prints the head of main."""
    script = next(
        step["run"] for step in steps(workflow("pulumi-up.yml")["jobs"]["up"]) if step.get("name") == HEAD_CHECK
    )
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "gh").write_text(f"#!/bin/sh\necho {head_of_main}\n")
    (fake / "gh").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "GITHUB_SHA": sha, "GITHUB_REPOSITORY": "acme/tenant-bigquery"}
    return subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False)


def test_a_rerun_for_a_commit_that_is_no_longer_the_head_of_main_is_refused(tmp_path: Path) -> None:
    old, new = "a" * 40, "b" * 40
    refused = _run_head_check(tmp_path, head_of_main=new, sha=old)
    assert refused.returncode == 1
    assert f"::error::{old} is no longer the head of main ({new})" in refused.stdout
    assert _run_head_check(tmp_path, head_of_main=old, sha=old).returncode == 0


def test_no_pulumi_up_is_ever_cancelled() -> None:
    """One update per stack at a time, queued, never cancelled halfway (that leaves a locked, half-applied stack)."""
    up_jobs = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        document = workflow(path.name)
        for job in document["jobs"].values():
            if any(
                s.get("uses", "").startswith("pulumi/actions@") and s["with"].get("command") == "up" for s in steps(job)
            ):
                assert document.get("concurrency", {}).get("cancel-in-progress") is not True, path.name
                up_jobs.append(job)
    assert [job["concurrency"] for job in up_jobs] == [
        {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}
    ]


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
    (checkout / "infra" / "cli.py").write_text("import sys\nsys.exit(0)\n")
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
    for environment in ("dev", "prod-preview", "prod"):
        assert f"environment `{environment}`" in table
    # Previews read state only: a DIY backend's Preview takes no lock (pulumi/pulumi pkg/backend/diy/backend.go:
    # diyBackend.Preview calls backend.Preview with b.apply, while Update, Refresh, Destroy and Import call b.Lock).
    preview_row = next(line for line in table.splitlines() if line.startswith("| `GCP_PREVIEW_SERVICE_ACCOUNT`"))
    assert "Storage Object Viewer" in preview_row and "write" not in preview_row
    assert "assertion.repository_id" in table and "assertion.repository_owner_id" in table


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
