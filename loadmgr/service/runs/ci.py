"""Which commit a run measured: its CI context (`ci` on the run), from the CI's environment,
from `runs start --commit/--branch/--build-url`, or from `git` beside the locustfile.

Each provider is read from the variables its documentation lists. A pull request's run
records the pull request's own branch (GitHub's GITHUB_HEAD_REF, GitLab's
CI_MERGE_REQUEST_SOURCE_BRANCH_NAME, Jenkins' CHANGE_BRANCH…), never the merge ref or the
target branch, so `--branch` and `--against-branch` tell a pull request's runs from its
base's. Whatever the source, a value is bounded and holds no control character; a build URL
keeps no user information and no credential-looking query option (uris.without_credentials).
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loadmgr.errors import ValidationFailed
from loadmgr.uris import without_credentials

CI_FIELDS = ("provider", "commit", "branch", "pullRequest", "buildUrl", "job")
# What a stored value may hold: a branch is a git ref name (git allows long ones, hosts
# cap them near 255), a commit a SHA-1 or SHA-256 in hex.
VALUE_MAX = {"provider": 40, "branch": 255, "pullRequest": 40, "buildUrl": 2_048, "job": 200}
COMMIT = re.compile(r"[0-9a-f]{7,64}")
COMMIT_PREFIX_MIN = 7
# Never in a stored value: control and format characters (bidirectional and zero-width
# marks make a branch read as another), line and paragraph separators, lone surrogates.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# `git` beside the locustfile: a run waits for it before anything starts, so not long.
GIT_TIMEOUT_SEC = 2.0

Env = Mapping[str, str]


def _ref_name(ref: str | None) -> str | None:
    """`refs/heads/main` → `main`; a pull request's merge ref names no branch."""
    if not ref or ref.startswith(("refs/pull/", "refs/tags/", "refs/merge-requests/")):
        return None
    return ref.removeprefix("refs/heads/")


def _first(env: Env, *names: str) -> str | None:
    return next((env[name] for name in names if env.get(name)), None)


def _github(env: Env) -> dict[str, str | None]:
    ref = env.get("GITHUB_REF", "")
    pull = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", ref)
    server, repo, run = (
        env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return {
        "commit": env.get("GITHUB_SHA"),
        # On a pull request GITHUB_REF_NAME is `123/merge`; the head branch is GITHUB_HEAD_REF.
        "branch": env.get("GITHUB_HEAD_REF") or (None if pull else env.get("GITHUB_REF_NAME")),
        "pullRequest": pull.group(1) if pull else None,
        "buildUrl": f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None,
        "job": env.get("GITHUB_JOB"),
    }


def _gitlab(env: Env) -> dict[str, str | None]:
    return {
        "commit": env.get("CI_COMMIT_SHA"),
        "branch": _first(
            env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_BRANCH", "CI_COMMIT_REF_NAME"
        )
        if not env.get("CI_COMMIT_TAG")
        else None,
        "pullRequest": env.get("CI_MERGE_REQUEST_IID"),
        "buildUrl": env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL"),
        "job": env.get("CI_JOB_NAME"),
    }


def _jenkins(env: Env) -> dict[str, str | None]:
    # A multibranch pull request builds as BRANCH_NAME `PR-24`; CHANGE_BRANCH is its head.
    branch = env.get("CHANGE_BRANCH") or (
        None if env.get("CHANGE_ID") else _first(env, "BRANCH_NAME", "GIT_BRANCH")
    )
    return {
        "commit": env.get("GIT_COMMIT"),
        "branch": branch.removeprefix("origin/") if branch else None,
        "pullRequest": env.get("CHANGE_ID"),
        "buildUrl": env.get("BUILD_URL"),
        "job": env.get("JOB_NAME"),
    }


def _circleci(env: Env) -> dict[str, str | None]:
    pull = env.get("CIRCLE_PR_NUMBER") or (env.get("CIRCLE_PULL_REQUEST") or "").rpartition("/")[2]
    return {
        "commit": env.get("CIRCLE_SHA1"),
        "branch": env.get("CIRCLE_BRANCH"),
        "pullRequest": pull or None,
        "buildUrl": env.get("CIRCLE_BUILD_URL"),
        "job": env.get("CIRCLE_JOB"),
    }


def _buildkite(env: Env) -> dict[str, str | None]:
    pull = env.get("BUILDKITE_PULL_REQUEST")
    return {
        "commit": env.get("BUILDKITE_COMMIT"),
        "branch": env.get("BUILDKITE_BRANCH"),  # a pull request's own branch
        "pullRequest": pull if pull and pull != "false" else None,
        "buildUrl": env.get("BUILDKITE_BUILD_URL"),
        "job": _first(env, "BUILDKITE_LABEL", "BUILDKITE_STEP_KEY"),
    }


def _azure(env: Env) -> dict[str, str | None]:
    pull = _first(env, "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "SYSTEM_PULLREQUEST_PULLREQUESTID")
    source = env.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") if pull else env.get("BUILD_SOURCEBRANCH")
    collection, project, build = (
        env.get(k) for k in ("SYSTEM_COLLECTIONURI", "SYSTEM_TEAMPROJECT", "BUILD_BUILDID")
    )
    url = (
        f"{collection.rstrip('/')}/{project}/_build/results?buildId={build}"
        if collection and project and build
        else None
    )
    return {
        "commit": env.get("BUILD_SOURCEVERSION"),  # what was checked out (a PR: its merge)
        "branch": _ref_name(source),
        "pullRequest": pull,
        "buildUrl": url,
        "job": _first(env, "SYSTEM_JOBDISPLAYNAME", "AGENT_JOBNAME"),
    }


# (provider, the variable that says the job runs there, how to read the rest)
PROVIDERS: tuple[tuple[str, str, Callable[[Env], dict[str, str | None]]], ...] = (
    ("github-actions", "GITHUB_ACTIONS", _github),
    ("gitlab-ci", "GITLAB_CI", _gitlab),
    ("circleci", "CIRCLECI", _circleci),
    ("buildkite", "BUILDKITE", _buildkite),
    ("azure-pipelines", "TF_BUILD", _azure),
    ("jenkins", "JENKINS_URL", _jenkins),
)


def clean(field: str, value: Any) -> str | None:
    """A value as stored, or None when it cannot be one (blank, a control character, too
    long, a commit that is no hex SHA, a build URL that is no http(s) URL)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in value):
        return None
    if field == "commit":
        value = value.lower()
        return value if COMMIT.fullmatch(value) else None
    if field == "buildUrl":
        if not re.match(r"https?://[^/?#\s]", value, re.I):
            return None
        value = without_credentials(value)
    return value if len(value) <= VALUE_MAX.get(field, 200) else None


def detect_ci(env: Env) -> dict[str, str]:
    """The CI context this environment's provider gives, cleaned; empty outside CI."""
    for provider, marker, read in PROVIDERS:
        if env.get(marker):
            found = {"provider": provider, **read(env)}
            return {k: v for k in CI_FIELDS if (v := clean(k, found.get(k))) is not None}
    return {}


def _git(directory: Path, *args: str) -> str | None:
    """One answer of git in `directory`, or None (no git, no repository, too slow).

    The directory comes from a test's stored locustfile path, written by whoever writes
    the database: git runs there with its hooks and fsmonitor off and no prompt, so a
    repository's own configuration runs nothing of its choosing."""
    command = ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(
            command,
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT_SEC,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace").strip() or None


def git_context(locustfile: str | None) -> dict[str, str]:
    """Commit and branch of the git repository holding the locustfile, if it is in one."""
    if not locustfile:
        return {}
    first = Path(locustfile.split(",")[0].strip()).expanduser()
    directory = first if first.is_dir() else first.parent
    if not directory.is_dir():
        return {}
    commit = clean("commit", _git(directory, "rev-parse", "--verify", "-q", "HEAD"))
    if commit is None:
        return {}
    branch = clean("branch", _git(directory, "symbolic-ref", "-q", "--short", "HEAD"))
    return {"provider": "git", "commit": commit, **({"branch": branch} if branch else {})}


def given_ci(commit: str | None, branch: str | None, build_url: str | None) -> dict[str, str]:
    """`--commit/--branch/--build-url` as stored; ValidationFailed (exit 2) for a bad one."""
    given: dict[str, str] = {}
    for option, field, value in (
        ("--commit", "commit", commit),
        ("--branch", "branch", branch),
        ("--build-url", "buildUrl", build_url),
    ):
        if value is None:
            continue
        cleaned = clean(field, value)
        if cleaned is None:
            raise ValidationFailed(f"invalid {option} {_shown(field, value)!r}: {_rule(field)}")
        given[field] = cleaned
    return given


def _shown(field: str, value: str) -> str:
    shown = without_credentials(value) if field == "buildUrl" else value
    return shown if len(shown) <= 80 else shown[:80] + "…"


def _rule(field: str) -> str:
    if field == "commit":
        return "a commit is 7 to 64 hex digits"
    if field == "buildUrl":
        return f"an http(s) URL of at most {VALUE_MAX[field]} characters, on one line"
    return f"1 to {VALUE_MAX[field]} characters, on one line"


def run_ci(
    given: Mapping[str, str], locustfile: str | None, env: Env | None = None
) -> dict[str, str] | None:
    """The run's `ci`: the CI's environment, else git beside the locustfile, with the
    options given over either (they win); None when nothing is known."""
    found = detect_ci(os.environ if env is None else env)
    if not found:
        found = git_context(locustfile)
    merged = {**found, **given}
    return {k: merged[k] for k in CI_FIELDS if k in merged} or None


def check_commit_prefix(text: str) -> str:
    """`runs list --commit`: at least COMMIT_PREFIX_MIN hex digits, lowercased."""
    cleaned = text.strip().lower()
    if not re.fullmatch(rf"[0-9a-f]{{{COMMIT_PREFIX_MIN},64}}", cleaned):
        raise ValidationFailed(
            f"invalid --commit {text[:80]!r}: {COMMIT_PREFIX_MIN} to 64 hex digits of a commit"
        )
    return cleaned


def check_branch(option: str, text: str) -> str:
    """A branch named by an option (`--branch`, `--against-branch`), as stored."""
    cleaned = clean("branch", text)
    if cleaned is None:
        raise ValidationFailed(f"invalid {option} {text[:80]!r}: {_rule('branch')}")
    return cleaned
