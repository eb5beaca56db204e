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
from helpers import REPO_ROOT

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


def test_pull_requests_run_the_tests_the_report_and_a_preview_per_stack() -> None:
    jobs = workflow("pull-request.yml")["jobs"]
    assert [step["run"] for step in steps(jobs["checks"]) if "run" in step] == ["make test"]
    report = "\n".join(step.get("run", "") for step in steps(jobs["report"]))
    assert 'python -m infra.cli diff --base "$BASE_SHA" --stack "$stack" --format markdown' in report
    assert 'python -m infra.cli plan --stack "$stack"' in report
    assert step_using(jobs["report"], "actions/upload-artifact")["with"]["name"] == "pr-report"
    assert step_using(jobs["report"], "actions/checkout")["with"]["fetch-depth"] == 0
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == STACKS
    preview = step_using(jobs["preview"], "pulumi/actions")["with"]
    assert preview["command"] == "preview"
    assert preview["comment-on-pr"] is True
    assert preview["policyPacks"] == "policies"
    assert preview["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    assert all((REPO_ROOT / "policies" / "config" / f"{stack}.json").is_file() for stack in STACKS)


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


def test_main_deploys_dev_then_prod_through_the_protected_environment() -> None:
    document = workflow("deploy.yml")
    assert document["on"] == {"push": {"branches": ["main"]}}
    jobs = document["jobs"]
    assert {job_id: job["with"]["stack"] for job_id, job in jobs.items()} == {"dev": "dev", "prod": "prod"}
    assert jobs["prod"]["needs"] == "dev"
    assert all(job["uses"] == "./.github/workflows/pulumi-up.yml" for job in jobs.values())
    [up] = workflow("pulumi-up.yml")["jobs"].values()
    assert up["environment"] == "${{ inputs.stack }}"  # prod waits for the environment's required reviewers
    assert up["permissions"] == {"contents": "read", "id-token": "write"}
    action = step_using(up, "pulumi/actions")["with"]
    assert action["command"] == "up"
    assert action["policyPacks"] == "policies"
    assert action["policyPackConfigs"] == "policies/config/${{ inputs.stack }}.json"


def test_no_pulumi_up_is_ever_cancelled() -> None:
    """One update per stack at a time, queued, never cancelled halfway (that leaves a locked, half-applied stack)."""
    up_jobs = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        document = workflow(path.name)
        for job in document["jobs"].values():
            if any(
                s.get("uses", "").startswith("pulumi/actions@") and s["with"]["command"] == "up" for s in steps(job)
            ):
                assert document.get("concurrency", {}).get("cancel-in-progress") is not True, path.name
                up_jobs.append(job)
    assert [job["concurrency"] for job in up_jobs] == [
        {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}
    ]


def _checkout_with_a_dropped_column(tmp_path: Path) -> tuple[Path, str]:
    """A checkout of this repository whose last commit drops a top-level column of a prod table."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for folder in ("infra", "stacks", "schemas"):
        shutil.copytree(REPO_ROOT / folder, checkout / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for stack_file in REPO_ROOT.glob("Pulumi*.yaml"):
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
    gate = workflow("pull-request.yml")["jobs"]["prod-data-gate"]
    script = next(step["run"] for step in steps(gate) if "infra.cli diff" in step.get("run", ""))
    # `python` is this virtualenv's, as setup-python + pip install make it in CI.
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "BASE_SHA": base, "HOME": str(checkout)}
    return subprocess.run(["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, check=False)


def test_the_prod_gate_refuses_an_unapproved_in_place_data_loss_and_passes_once_approved(tmp_path: Path) -> None:
    checkout, base = _checkout_with_a_dropped_column(tmp_path)
    refused = _run_gate(checkout, base)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "update-destructive" in refused.stdout

    prod = checkout / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text() + "  tenant-bigquery:approveDataLoss:\n    - tenants.tenant_profiles\n")
    approved = _run_gate(checkout, base)
    assert approved.returncode == 0, approved.stdout + approved.stderr
