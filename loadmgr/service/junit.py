"""A run's thresholds (and baseline checks) as JUnit XML, so CI systems show them.

Built with xml.etree, so the file is well-formed whatever the data holds.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from loadmgr.models import RunStatus
from loadmgr.service.reports import ReportData, metric_text

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


def junit_xml(data: ReportData, *, include_baseline: bool = False) -> bytes:
    """Thresholds (and, if asked, baseline checks) as JUnit test cases.

    A run without thresholds is one test case for its status: a failed run fails it and
    a run still in progress is skipped, so CI never reads "no tests" as success.
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
            actual = (
                "no value" if result.actual is None else metric_text(result.metric, result.actual)
            )
            limit = f"{result.op} {metric_text(result.metric, result.limit)}"
            if result.scope:
                limit += f" for {result.scope}"
            message = f"{result.expression}: actual {actual} (limit {limit})"
            failure = ET.SubElement(case, "failure", type="threshold")
            failure.set("message", message)
            failure.text = f"threshold failed: {message}"
        cases.append(case)
    if include_baseline:
        for check in (c for c in data.checks if c.metric in data.judged):
            case = ET.Element(
                "testcase", classname=f"{suite_name}.baseline", name=f"{check.metric} regression"
            )
            if check.regressed:
                failure = ET.SubElement(case, "failure", type="regression")
                failure.set("message", check.describe())
                failure.text = check.describe()
            cases.append(case)
    if not run.thresholdResults:
        case = ET.Element("testcase", classname=f"{suite_name}.run", name=f"run {run.name}")
        case.set("time", duration)
        if run.status == RunStatus.FAILED:
            failure = ET.SubElement(case, "failure", type="run")
            reason = run.error or (run.stopReason.value if run.stopReason else "unknown")
            failure.set("message", f"run failed: {reason}")
        elif run.status.is_active:
            ET.SubElement(case, "skipped", message=f"run is still {run.status.value}")
        cases.insert(0, case)
    suite.extend(cases)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    for element in (suites, suite):
        element.set("tests", str(len(cases)))
        element.set("failures", str(failures))
        element.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", duration)
    if run.startedAt is not None:
        suite.set("timestamp", run.startedAt.strftime("%Y-%m-%dT%H:%M:%S"))
    _xml_safe(suites)
    ET.indent(suites)
    text: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
