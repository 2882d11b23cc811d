"""`harness check` re-judges stored runs of real services: a passing run passes again and
a bug variant's run fails again, with the very check messages run.json holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.session import run_scenarios, select_scenarios
from harness.settings import RunSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.usefixtures("keep_sigterm_handler")]



@pytest.mark.parametrize(("variant", "verdict", "code"), [("none", "pass", 0),
                                                          ("truncate_names", "fail", 1)])
def test_check_rejudges_a_stored_run_with_the_same_messages(
        leak_check: Path, capsys: pytest.CaptureFixture[str], variant: str, verdict: str,
        code: int) -> None:
    settings = RunSettings(seed=20261122, variant=variant, report_root=leak_check)
    result, report_dir = run_scenarios(select_scenarios(["steady_state"]), settings)
    stored = json.loads((report_dir / "run.json").read_text())
    (scenario,) = stored["scenarios"]
    assert scenario["verdict"] == verdict, result.scenarios[0].first_failure()
    assert stored["exit_code"] == code

    assert cli.main(["check", str(report_dir)]) == code
    out = capsys.readouterr().out
    checks = [line.strip() for line in out.splitlines() if line.startswith("    [")]
    assert checks == [f"[{'ok' if c['ok'] else c['status'].upper()}] {c['name']}: "
                      f"{c['details']}" for c in scenario["checks"]]
    assert out.rstrip().endswith("same verdicts and check messages as the run"), out
    if variant == "truncate_names":
        assert "[FAIL] convergence: " in out

    # One scenario's folder on its own gives the same exit code.
    assert cli.main(["check", str(report_dir / "steady_state")]) == code
