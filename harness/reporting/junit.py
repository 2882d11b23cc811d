"""JUnit XML for CI: one testsuite per run, one testcase per scenario."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.reporting.summary import check_line

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean(text: str) -> str:
    # Log tails carry ANSI escapes and other control characters XML 1.0 cannot hold.
    return _XML_INVALID.sub("?", text)


def render_junit(run: dict[str, Any]) -> str:
    scenarios = run["scenarios"]
    suite = ET.Element("testsuite", {
        "name": f"replication-chaos-harness.{run['broker']}",
        "tests": str(len(scenarios)),
        "failures": str(sum(1 for s in scenarios if s["verdict"] == "fail")),
        "errors": str(sum(1 for s in scenarios if s["verdict"] == "error")),
        "skipped": str(sum(1 for s in scenarios
                           if s["verdict"] in ("inconclusive", "not_applicable"))),
        "time": f"{sum(s['duration_s'] for s in scenarios):.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for key in ("seed", "broker", "runtime", "variant", "run_id", "replay"):
        ET.SubElement(props, "property", {"name": key, "value": str(run[key])})
    for scenario in scenarios:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"scenarios.{run['broker']}", "name": scenario["name"],
            "time": f"{scenario['duration_s']:.3f}"})
        failed = [c for c in scenario["checks"] if not c["ok"]]
        if scenario["verdict"] == "error":
            # No error text: a checker raised, and its "unknown" check says which.
            text = scenario["error"] or "\n".join(
                f"{c['name']}: {c['details']}" for c in failed if c.get("status") == "unknown")
            first = text.splitlines()[0] if text else ""
            node = ET.SubElement(case, "error", {"message": _clean(first[:500])})
            node.text = _clean(text)
        elif scenario["verdict"] == "not_applicable":
            ET.SubElement(case, "skipped", {"message": _clean(
                f"not applicable on {run['broker']}: {scenario.get('not_applicable', '')}"
                [:500])})
        elif scenario["verdict"] == "inconclusive":
            # Nothing failed but something could not be shown: not a pass, not a failure.
            node = ET.SubElement(case, "skipped", {
                "message": _clean(f"inconclusive: {failed[0]['name']}: "
                                  f"{failed[0]['details']}"[:500])})
            node.text = _clean("\n".join(f"{c['name']}: {c['details']}" for c in failed))
        elif failed:
            node = ET.SubElement(case, "failure", {
                "message": _clean(f"{failed[0]['name']}: {failed[0]['details']}"[:500])})
            node.text = _clean("\n".join(f"{c['name']}: {c['details']}" for c in failed))
        elif scenario["verdict"] == "fail":
            ET.SubElement(case, "failure", {"message": "no check ran: the scenario proves nothing"})
        out = ET.SubElement(case, "system-out")
        out.text = _clean("\n".join(check_line(c) for c in scenario["checks"]))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(run: dict[str, Any], report_dir: Path) -> Path:
    path = report_dir / "junit.xml"
    path.write_text(render_junit(run))
    return path
