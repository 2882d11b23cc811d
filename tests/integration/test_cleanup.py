"""Nothing the harness starts outlives it: not after a pass, a failure, or an interrupt."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import processes_started_under

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_load_stops_everything(tmp_path: Path, sig: signal.Signals) -> None:
    # A relative --report-dir, as the README's default "reports": every component runs in
    # its own working directory, so paths must be made absolute before they are handed on.
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "steady_state", "--seed", "5",
         "--report-dir", "reports"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        for line in proc.stdout:
            seen.append(line)
            if "load:" in line or time.monotonic() > deadline:
                break
        assert any("load:" in line for line in seen), "".join(seen)
        assert processes_started_under(tmp_path), "the run had started nothing to clean up"
        time.sleep(1.0)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + output
    assert "interrupted" in output
    assert "Traceback" not in output
    assert processes_started_under(tmp_path) == []
    (run_json,) = tmp_path.glob("reports/*/run.json")
    assert json.loads(run_json.read_text())["interrupted"] is True
