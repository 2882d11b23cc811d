"""JUnit XML for CI: one testsuite per scenario, one testcase per check.

A CI page then shows which check failed, not only which scenario: the scenario is the
testcase's classname, the check its name. A failed check is a <failure> with its message,
a check whose checker raised (status unknown) an <error>, an inconclusive one <skipped>
(not a pass, not a failure). What belongs to the scenario rather than to one check gets a
testcase named `scenario`: an error that stopped it before or outside its checks, a
scenario not applicable on this broker (skipped), or one that ran no check at all (a
failure: it proves nothing).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MESSAGE_CHARS = 500
# The start of a counterexample helps in a CI log; run.json holds all of it.
_COUNTEREXAMPLE_CHARS = 4000
SCENARIO_CASE = "scenario"
_PROPERTIES = ("seed", "broker", "runtime", "variant", "run_id", "replay")


def _clean(text: str) -> str:
    # Log tails carry ANSI escapes and other control characters XML 1.0 cannot hold.
    return _XML_INVALID.sub("?", text)


def _status(check: dict[str, Any]) -> str:
    # run.json files written before checks carried a status only have "ok".
    return str(check.get("status") or ("pass" if check["ok"] else "fail"))


def _outcome(case: ET.Element, tag: str, message: str, text: str = "") -> None:
    node = ET.SubElement(case, tag, {"message": _clean(message[:_MESSAGE_CHARS])})
    if text:
        node.text = _clean(text)


def _check_case(suite: ET.Element, classname: str, check: dict[str, Any]) -> str:
    case = ET.SubElement(suite, "testcase", {"classname": classname, "name": check["name"],
                                             "time": "0"})
    status = _status(check)
    text = check["details"]
    if check.get("counterexample"):
        example = json.dumps(check["counterexample"], default=str)
        text += "\ncounterexample: " + example[:_COUNTEREXAMPLE_CHARS] \
            + (" ..." if len(example) > _COUNTEREXAMPLE_CHARS else "")
    if status == "fail":
        _outcome(case, "failure", check["details"], text)
    elif status == "unknown":
        _outcome(case, "error", check["details"], text)
    elif status == "inconclusive":
        _outcome(case, "skipped", f"inconclusive: {check['details']}", text)
    return status


def _scenario_case(suite: ET.Element, classname: str, scenario: dict[str, Any],
                   broker: str) -> str:
    """The scenario's own testcase, when its verdict rests on more than its checks; the
    JUnit status it carries ("" when it needs none)."""
    case = ET.Element("testcase", {"classname": classname, "name": SCENARIO_CASE,
                                   "time": f"{scenario['duration_s']:.3f}"})
    if scenario["verdict"] == "not_applicable":
        _outcome(case, "skipped",
                 f"not applicable on {broker}: {scenario.get('not_applicable', '')}")
        status = "skipped"
    elif scenario["error"]:
        kind = scenario.get("error_kind", "")
        _outcome(case, "error", scenario["error"].splitlines()[0],
                 (f"[{kind}] " if kind else "") + scenario["error"])
        status = "error"
    elif not scenario["checks"]:
        _outcome(case, "failure", "no check ran: the scenario proves nothing")
        status = "failure"
    else:
        return ""
    suite.append(case)
    return status


def render_junit(run: dict[str, Any]) -> str:
    root = ET.Element("testsuites", {"name": f"replication-chaos-harness.{run['broker']}"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for scenario in run["scenarios"]:
        suite = ET.SubElement(root, "testsuite", {"name": scenario["name"]})
        # Properties first, as the JUnit schema orders a suite's children.
        props = ET.SubElement(suite, "properties")
        for key in _PROPERTIES:
            ET.SubElement(props, "property", {"name": key, "value": _clean(str(run[key]))})
        ET.SubElement(props, "property", {"name": "verdict", "value": scenario["verdict"]})
        classname = scenario["name"]
        statuses = [_scenario_case(suite, classname, scenario, run["broker"])]
        if scenario["verdict"] != "not_applicable":
            statuses += [_check_case(suite, classname, c) for c in scenario["checks"]]
        counts = {
            "tests": len(suite.findall("testcase")),
            "failures": sum(s in ("fail", "failure") for s in statuses),
            "errors": sum(s in ("unknown", "error") for s in statuses),
            "skipped": sum(s in ("inconclusive", "skipped") for s in statuses)}
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{scenario['duration_s']:.3f}")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{sum(s['duration_s'] for s in run['scenarios']):.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(run: dict[str, Any], report_dir: Path) -> Path:
    path = report_dir / "junit.xml"
    path.write_text(render_junit(run))
    return path
