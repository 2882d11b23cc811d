from harness.reporting.junit import render_junit, write_junit
from harness.reporting.run_json import load_run_json, write_run_json
from harness.reporting.summary import (
    check_line,
    check_lines,
    render_summary,
    scenario_line,
    write_summary,
)

__all__ = ["check_line", "check_lines", "load_run_json", "render_junit", "render_summary",
           "scenario_line", "write_junit", "write_run_json", "write_summary"]
