"""A run's verdict, thresholds and baseline checks as JUnit XML, so CI systems show them.

Built with xml.etree, so the file is well-formed whatever the data holds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from loadmgr.models import ReasonKind, RunStatus, Verdict
from loadmgr.models.formatting import threshold_line
from loadmgr.service.reports.run_html import ReportData

# Characters XML 1.0 cannot carry at all, even escaped: shown as `\x1b` so the file stays
# well-formed whatever a request name or error message contains.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _xml_safe(root: ET.Element) -> None:
    for element in root.iter():
        if element.text:
            element.text = _xml_text(element.text)
        for key, value in element.attrib.items():
            element.set(key, _xml_text(value))


def _run_case(suite_name: str, data: ReportData, duration: str) -> ET.Element | None:
    """The run itself as a test case, when its verdict is more than its thresholds say.

    An `error` verdict is a JUnit error; `aborted` and "no successful request" are
    failures (CI must not read a run stopped half-way as a pass), and so is `inconclusive`
    (its generator's reasons: the failed checks are cases of their own); a run still going
    is skipped; a run without thresholds gets a case anyway, so CI never reads "no tests".
    """
    run = data.run
    case = ET.Element("testcase", classname=f"{suite_name}.run", name=f"run {run.name}")
    case.set("time", duration)
    kinds = {ReasonKind.ERROR, ReasonKind.ABORTED, ReasonKind.EXCEPTION, ReasonKind.NO_SUCCESS}
    if run.verdict == Verdict.INCONCLUSIVE:
        kinds.add(ReasonKind.GENERATOR)  # a pass's generator warning fails nothing
    run_reasons = [r for r in run.verdictReasons if r.kind in kinds]
    if run.status.is_active:
        ET.SubElement(case, "skipped", message=f"run is still {run.status.value}")
    elif run.verdict == Verdict.ERROR or (run.status == RunStatus.FAILED and not run_reasons):
        message = "; ".join(r.message for r in run_reasons) or (
            run.error or (run.stopReason.value if run.stopReason else "unknown")
        )
        error = ET.SubElement(case, "error", type="error")
        error.set("message", f"run could not complete: {message}")
        error.text = error.get("message")
    elif run_reasons:
        kind = run_reasons[0].kind.value
        failure = ET.SubElement(case, "failure", type=kind)
        failure.set(
            "message",
            f"run {run.verdict.value if run.verdict else kind}: "
            + "; ".join(r.message for r in run_reasons),
        )
        failure.text = failure.get("message")
    elif run.thresholdResults:
        return None
    return case


def junit_xml(data: ReportData) -> bytes:
    """Thresholds, baseline checks and the run's verdict as JUnit test cases.

    One case per threshold; one per baseline metric judged (by the limits the run used,
    or the report's --max-regression); and one for the run itself when its verdict
    needs it (see `_run_case`).
    """
    run = data.run
    suite_name = f"loadmgr.{data.test_name or run.loadTestId}"
    suites = ET.Element("testsuites", name="loadmgr")
    suite = ET.SubElement(suites, "testsuite", name=suite_name)
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("runId", run.id),
        ("runName", run.name),
        ("loadTestId", run.loadTestId),
        ("status", run.status.value),
        ("verdict", run.verdict.value if run.verdict else ""),
        ("targetUrl", run.targetUrl),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    duration = f"{data.summary.get('durationSec') or 0:.3f}"
    cases: list[ET.Element] = []
    for result in run.thresholdResults:
        case = ET.Element("testcase", classname=f"{suite_name}.thresholds", name=result.expression)
        case.set("time", duration)
        if not result.passed:
            message = threshold_line(
                result.expression,
                result.metric,
                result.op,
                result.limit,
                result.scope,
                result.actual,
            )
            failure = ET.SubElement(case, "failure", type="threshold")
            failure.set("message", message)
            failure.text = f"threshold failed: {message}"
        cases.append(case)
    for check in data.checks:
        case = ET.Element(
            "testcase", classname=f"{suite_name}.baseline", name=f"{check.metric} regression"
        )
        if check.regressed:
            failure = ET.SubElement(case, "failure", type="regression")
            failure.set("message", check.describe())
            failure.text = check.describe()
        elif check.inconclusive:  # neither a pass nor a failure: not significant
            ET.SubElement(case, "skipped", message=check.describe())
        cases.append(case)
    run_case = _run_case(suite_name, data, duration)
    if run_case is not None:
        cases.insert(0, run_case)
    suite.extend(cases)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    for element in (suites, suite):
        element.set("tests", str(len(cases)))
        element.set("failures", str(failures))
        element.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", duration)
    if run.startedAt is not None:
        suite.set("timestamp", run.startedAt.strftime("%Y-%m-%dT%H:%M:%S"))
    _xml_safe(suites)
    ET.indent(suites)
    text: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
