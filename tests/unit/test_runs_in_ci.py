"""Runs in CI (issue 25): the CI context each provider's variables give, the options over it,
git beside the locustfile; the Markdown summary read back through a Markdown renderer; the
CI examples against the CLI they call."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.errors import ValidationFailed
from loadmgr.models import Scope, ThresholdResult
from loadmgr.service.reports.markdown import run_summary, text
from loadmgr.service.runs.ci import (
    PROVIDERS,
    check_commit_prefix,
    clean,
    detect_ci,
    git_context,
    given_ci,
    run_ci,
)
from loadmgr.store import Store
from tests.metrics_data import final_stats, make_run, make_test, snapshots, store_all

SHA = "0123456789abcdef0123456789abcdef01234567"
GH = {"GITHUB_ACTIONS": "true", "GITHUB_SHA": SHA, "GITHUB_JOB": "load",
      "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/shop",
      "GITHUB_RUN_ID": "99"}
GH_URL = "https://github.com/acme/shop/actions/runs/99"

# (environment, what is recorded): a push and a pull request of each provider.
PROVIDER_CASES: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("github push", {**GH, "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"},
     {"provider": "github-actions", "commit": SHA, "branch": "main", "buildUrl": GH_URL,
      "job": "load"}),
    # On a pull request GITHUB_REF_NAME is `42/merge`: the branch is GITHUB_HEAD_REF.
    ("github pull request", {**GH, "GITHUB_REF": "refs/pull/42/merge", "GITHUB_REF_NAME":
                             "42/merge", "GITHUB_HEAD_REF": "feature/cart", "GITHUB_BASE_REF":
                             "main"},
     {"provider": "github-actions", "commit": SHA, "branch": "feature/cart", "pullRequest": "42",
      "buildUrl": GH_URL, "job": "load"}),
    ("gitlab push", {"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA, "CI_COMMIT_BRANCH": "main",
                     "CI_COMMIT_REF_NAME": "main", "CI_JOB_URL": "https://gl.example/j/7",
                     "CI_JOB_NAME": "load"},
     {"provider": "gitlab-ci", "commit": SHA, "branch": "main",
      "buildUrl": "https://gl.example/j/7", "job": "load"}),
    ("gitlab merge request", {"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA,
                              "CI_COMMIT_REF_NAME": "feature/cart",
                              "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/cart",
                              "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                              "CI_MERGE_REQUEST_IID": "12", "CI_JOB_NAME": "load"},
     {"provider": "gitlab-ci", "commit": SHA, "branch": "feature/cart", "pullRequest": "12",
      "job": "load"}),
    ("jenkins branch", {"JENKINS_URL": "https://ci.example/", "GIT_COMMIT": SHA,
                        "GIT_BRANCH": "origin/main", "BUILD_URL": "https://ci.example/job/l/3/",
                        "JOB_NAME": "shop/load"},
     {"provider": "jenkins", "commit": SHA, "branch": "main",
      "buildUrl": "https://ci.example/job/l/3/", "job": "shop/load"}),
    # A multibranch pull request builds as BRANCH_NAME PR-24; its head is CHANGE_BRANCH.
    ("jenkins pull request", {"JENKINS_URL": "https://ci.example/", "GIT_COMMIT": SHA,
                              "BRANCH_NAME": "PR-24", "CHANGE_ID": "24",
                              "CHANGE_BRANCH": "feature/cart", "CHANGE_TARGET": "main"},
     {"provider": "jenkins", "commit": SHA, "branch": "feature/cart", "pullRequest": "24"}),
    ("circleci", {"CIRCLECI": "true", "CIRCLE_SHA1": SHA, "CIRCLE_BRANCH": "feature/cart",
                  "CIRCLE_PULL_REQUEST": "https://github.com/acme/shop/pull/8",
                  "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/5",
                  "CIRCLE_JOB": "load"},
     {"provider": "circleci", "commit": SHA, "branch": "feature/cart", "pullRequest": "8",
      "buildUrl": "https://circleci.com/gh/acme/shop/5", "job": "load"}),
    ("buildkite push", {"BUILDKITE": "true", "BUILDKITE_COMMIT": SHA, "BUILDKITE_BRANCH": "main",
                        "BUILDKITE_PULL_REQUEST": "false",
                        "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/4",
                        "BUILDKITE_LABEL": ":locust: load"},
     {"provider": "buildkite", "commit": SHA, "branch": "main",
      "buildUrl": "https://buildkite.com/acme/shop/builds/4", "job": ":locust: load"}),
    ("buildkite pull request", {"BUILDKITE": "true", "BUILDKITE_COMMIT": SHA,
                                "BUILDKITE_BRANCH": "feature/cart",
                                "BUILDKITE_PULL_REQUEST": "31",
                                "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "main"},
     {"provider": "buildkite", "commit": SHA, "branch": "feature/cart", "pullRequest": "31"}),
    ("azure push", {"TF_BUILD": "True", "BUILD_SOURCEVERSION": SHA,
                    "BUILD_SOURCEBRANCH": "refs/heads/main",
                    "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
                    "SYSTEM_TEAMPROJECT": "shop", "BUILD_BUILDID": "77",
                    "SYSTEM_JOBDISPLAYNAME": "load"},
     {"provider": "azure-pipelines", "commit": SHA, "branch": "main",
      "buildUrl": "https://dev.azure.com/acme/shop/_build/results?buildId=77", "job": "load"}),
    ("azure pull request", {"TF_BUILD": "True", "BUILD_SOURCEVERSION": SHA,
                            "BUILD_SOURCEBRANCH": "refs/pull/5/merge",
                            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/cart",
                            "SYSTEM_PULLREQUEST_TARGETBRANCH": "refs/heads/main",
                            "SYSTEM_PULLREQUEST_PULLREQUESTID": "5"},
     {"provider": "azure-pipelines", "commit": SHA, "branch": "feature/cart",
      "pullRequest": "5"}),
]


@pytest.mark.parametrize(("env", "expected"), [c[1:] for c in PROVIDER_CASES],
                         ids=[c[0] for c in PROVIDER_CASES])
def test_each_provider_gives_commit_branch_pull_request_build_and_job(
    env: dict[str, str], expected: dict[str, str]
) -> None:
    assert detect_ci(env) == expected


def test_the_table_covers_every_provider() -> None:
    covered = {expected["provider"] for _, _, expected in PROVIDER_CASES}
    assert covered == {name for name, _, _ in PROVIDERS}
    assert detect_ci({"CI": "true", "HOME": "/x"}) == {}


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://bot:s3cr3t@ci.example/job/1/", "https://ci.example/job/1/"),
        ("https://ci.example/b?token=s3cr3t&x=1", "https://ci.example/b?x=1"),
        ("https://ci.example/b?buildId=7&X-Amz-Signature=s3cr3t", "https://ci.example/b?buildId=7"),
        ("https://ci.example/b?access_token=s3cr3t", "https://ci.example/b"),
    ],
)
def test_a_build_url_keeps_no_credential(url: str, kept: str) -> None:
    assert detect_ci({"JENKINS_URL": "x", "BUILD_URL": url})["buildUrl"] == kept
    assert given_ci(None, None, url) == {"buildUrl": kept}


@settings(deadline=None, derandomize=True)
@given(st.text(max_size=400))
def test_any_value_is_stored_bounded_on_one_line_or_not_at_all(value: str) -> None:
    for field in ("commit", "branch", "pullRequest", "buildUrl", "job"):
        cleaned = clean(field, value)
        if cleaned is not None:
            assert 0 < len(cleaned) <= 2_048 and cleaned == cleaned.strip()
            assert not {unicodedata.category(c) for c in cleaned} & {"Cc", "Cf", "Zl", "Zp"}
            assert field != "commit" or len(cleaned) <= 64


def test_what_cannot_be_stored_is_dropped_from_the_environment() -> None:
    env = {"GITLAB_CI": "true", "CI_COMMIT_SHA": "not-a-sha", "CI_COMMIT_BRANCH": "a\nb",
           "CI_JOB_NAME": "x" * 201, "CI_JOB_URL": "javascript:alert(1)"}
    assert detect_ci(env) == {"provider": "gitlab-ci"}


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"commit": "xyz"}, "--commit"),
        ({"commit": "abc12"}, "--commit"),
        ({"branch": "a\x1b[31mb"}, "--branch"),
        ({"branch": "b" * 256}, "--branch"),
        ({"build_url": "ftp://ci.example/1"}, "--build-url"),
    ],
)
def test_a_bad_option_is_a_usage_error(options: dict[str, str], words: str) -> None:
    with pytest.raises(ValidationFailed, match=words):
        given_ci(options.get("commit"), options.get("branch"), options.get("build_url"))


def test_options_win_over_the_environment() -> None:
    given = given_ci("ABCDEF0", "release/1", None)
    env = {**GH, "GITHUB_REF_NAME": "main"}
    assert run_ci(given, None, env) == {
        "provider": "github-actions", "commit": "abcdef0", "branch": "release/1",
        "buildUrl": GH_URL, "job": "load",
    }
    assert run_ci({}, None, {}) is None


def test_a_commit_prefix_is_seven_hex_digits_at_least() -> None:
    assert check_commit_prefix(" ABCDEF0 ") == "abcdef0"
    for bad in ("abcdef", "abcdefg", "a.c*def0", "(?i)abcdef0"):
        with pytest.raises(ValidationFailed, match="--commit"):
            check_commit_prefix(bad)


def _git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=directory, capture_output=True, check=True)
    return done.stdout.decode().strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_outside_ci_the_locustfile_repository_gives_commit_and_branch(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "perf/checkout")
    (repo / "locustfile.py").write_text("# a locustfile\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    head = _git(repo, "rev-parse", "HEAD")
    locustfile = str(repo / "locustfile.py")
    assert git_context(locustfile) == {"provider": "git", "commit": head, "branch": "perf/checkout"}
    assert run_ci({}, locustfile, {}) == git_context(locustfile)
    _git(repo, "checkout", "-q", "--detach")
    assert git_context(locustfile) == {"provider": "git", "commit": head}  # no branch
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "locustfile.py").write_text("# not in a repository\n")
    assert git_context(str(outside / "locustfile.py")) == {}
    assert git_context(str(tmp_path / "gone" / "locustfile.py")) == {}


def test_without_git_nothing_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    (tmp_path / "locustfile.py").write_text("# a locustfile\n")
    assert git_context(str(tmp_path / "locustfile.py")) == {}
    assert run_ci({}, str(tmp_path / "locustfile.py"), {}) is None


# -- the Markdown summary --------------------------------------------------------------


class _Html(HTMLParser):
    """The rendered summary read back: table rows as cell texts, every tag and all text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self.text = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._cell is not None:
            self._cell.append(data)


def _rendered(markdown: str) -> _Html:
    from markdown_it import MarkdownIt

    # HTML allowed, as GitHub's renderer allows some: escaping alone must keep it out.
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    parsed = _Html()
    parsed.feed(html)
    return parsed


HOSTILE_NAMES = [
    "/a|b|c", "/x`code`", "<script>alert(1)</script>", "/line\nbreak|\n| x | y |",
    "[click](javascript:alert(1))", "**bold** _i_ \\| <img src=x onerror=alert(1)>",
]


@pytest.fixture
def store() -> Store:
    made = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    made.ensure_indexes()
    return made


def test_the_summary_reads_back_verdict_thresholds_commit_and_names_as_text(store: Store) -> None:
    test = make_test("checkout")
    per_request = [
        {"method": "GET", "name": name, "numRequests": 100 + i, "numFailures": 0,
         "p95ResponseMs": 120.0, "requestsPerSec": 10.0}
        for i, name in enumerate(HOSTILE_NAMES)
    ]
    results = [
        ThresholdResult(expression="p95<100ms", metric="p95", op="<", limit=100.0,
                        actual=120.0, passed=False),
        ThresholdResult(expression="error_rate<1%", metric="error_rate", op="<", limit=0.01,
                        actual=0.0, passed=True),
        ThresholdResult(expression="p95[GET /a|b|c]<500ms", metric="p95", scope="GET /a|b|c",
                        op="<", limit=500.0, actual=120.0, passed=True),
    ]
    run = make_run(
        test, final=final_stats(per_request=per_request), thresholdResults=results,
        thresholds=[r.expression for r in results], verdict="failed",
        verdictReasons=[{"kind": "threshold", "message": "p95<100ms: 120ms (limit 100ms)"}],
        ci={"provider": "github-actions", "commit": SHA, "branch": "feature/<b>|x",
            "pullRequest": "42", "buildUrl": "https://github.com/acme/shop/actions/runs/9?a=(b)"},
    )
    store_all(store.db, test, [run], snapshots(run, 30))
    page = _rendered(run_summary(store, run.id))
    assert "FAILED" in page.text and "p95<100ms: 120ms (limit 100ms)" in page.text
    assert SHA[:12] in page.text and "feature/<b>|x" in page.text and "42" in page.text
    rows = {row[0]: row for row in page.rows if row}
    for result in results:
        assert rows[result.expression][-1] == ("pass" if result.passed else "FAIL")
        assert len(rows[result.expression]) == 4  # no `|` of a name split its row
    for name in HOSTILE_NAMES:
        shown = " ".join(f"GET {name}".split())  # a newline is a blank on one line
        assert rows[shown][1] in {f"{100 + i}" for i in range(len(HOSTILE_NAMES))}
        assert len(rows[shown]) == 5
    assert {"script", "img", "code", "em"}.isdisjoint(page.tags)
    assert page.tags.count("strong") == 2  # the verdict and the failed threshold: ours only
    assert page.tags.count("a") == 1  # the build link, and no link of a name
    sparks = {row[0]: row[1] for row in page.rows if row and row[0] in ("RPS", "p95")}
    assert set(sparks) == {"RPS", "p95"}
    assert all(set(line) <= set("▁▂▃▄▅▆▇█·") for line in sparks.values())


def test_a_run_without_anything_still_summarises(store: Store) -> None:
    test = make_test("checkout")
    run = make_run(test, final=None, finalStats=None, status="Failed", verdict="error")
    store_all(store.db, test, [run])
    page = _rendered(run_summary(store, run.id))
    assert "ERROR" in page.text and "No thresholds" in page.text and "Commit: unknown" in page.text


@settings(deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_any_text_renders_as_itself_in_one_table_cell(value: str) -> None:
    page = _rendered(f"| x |\n|---|\n| {text(value)} |\n")
    assert page.tags == ["table", "thead", "tr", "th", "tbody", "tr", "td"]
    one_line = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", value)
    assert page.rows[1][0].split() == one_line.split()


# -- the CI examples -------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"


def _commands(script: str) -> list[list[str]]:
    """Each `loadmgr …` command of a shell script, its arguments split (continuations joined)."""
    import shlex

    joined = script.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["loadmgr"]:
            found.append(words[1:])
    return found


def _scripts(document: Any) -> list[str]:
    if isinstance(document, dict):
        return [s for key, value in document.items() for s in (
            [value] if key in ("run", "script") and isinstance(value, str) else
            value if key in ("script", "before_script") and isinstance(value, list) else
            _scripts(value))]
    if isinstance(document, list):
        return [s for item in document for s in _scripts(item)]
    return []


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_each_ci_example_calls_commands_and_options_the_cli_has(name: str) -> None:
    import yaml

    from tests.conftest import walk_commands

    document = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    commands = [c for script in _scripts(document) for c in _commands(str(script))]
    known = {tuple(path): command for path, command in walk_commands()}
    called = set()
    for words in commands:
        path = next(
            (p for n in (2, 1) if tuple(p := words[:n]) in known), None
        )
        if path is None and words[:1] == ["apply"]:
            continue  # `loadmgr apply` (issue 25's other half) may not be merged here yet
        assert path is not None, f"{name}: no command loadmgr {' '.join(words[:2])}"
        options = {o for param in known[tuple(path)].params for o in param.opts}
        for word in words[len(path):]:
            flag = word.split("=", 1)[0]
            if flag.startswith("--"):
                assert flag in options, f"{name}: loadmgr {' '.join(path)} has no {flag}"
        called.add(" ".join(path))
    assert {"runs start", "metrics report"} <= called
    flags = " ".join(" ".join(c) for c in commands)
    assert "--check-trend" in flags and "--junit" in flags and "--html" in flags


def test_runs_show_and_its_csv_tell_the_runs_ci_context(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """`runs show` has a `ci` row (commit short, branch, pull request, build); `-o csv`
    has the `ci.*` columns docs/output.md lists."""
    import csv
    import io

    from rich.console import Console

    from loadmgr.cli.output import Renderer
    from loadmgr.cli.runs.views import RUN_CSV, run_view

    ci = {"provider": "github", "commit": SHA, "branch": "main", "pullRequest": "42",
          "buildUrl": "https://ci.example.com/b/7", "job": "load"}
    data = make_run(make_test("checkout"), ci=ci).model_dump(mode="json")
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(run_view(data))
    row = next(line for line in console.export_text().splitlines() if " ci " in f" {line} ")
    for part in (f"commit {SHA[:12]}", "branch main", "pull request 42", "ci.example.com/b/7"):
        assert part in row, row
    assert SHA not in row  # the commit short
    Renderer("csv", False).one(data, run_view, csv_columns=RUN_CSV)
    written = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {key: written[f"ci.{key}"] for key in ci} == ci
    bare = make_run(make_test("checkout")).model_dump(mode="json")
    console.print(run_view(bare))
    assert any(line.split()[1:3] == ["ci", "-"] for line in console.export_text().splitlines())
