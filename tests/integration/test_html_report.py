"""The HTML report in a real browser: headless Chromium (Debian's package) loads index.html
from disk, and the tests read the DOM it built and a screenshot it took.

One test renders a stored run built in a moment (a failing scenario with a broker pause,
an error, a pass); the other a real broker_outage_pause run on RabbitMQ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from harness.reporting import load_run_json
from harness.reporting.bench_html import write_bench_html
from harness.reporting.html import INDEX, write_html
from harness.session import run_scenarios, select_scenarios
from harness.settings import RunSettings
from tests.bench_data import REPLICATION, bench_data, bench_folder
from tests.report_data import build_run

pytestmark = pytest.mark.integration

# The fault window's shade in the chart: #d62728 at 15% over white.
_SHADE = (249, 223, 223)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI must run this test (`make browser` "
                    "installs it as root: apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test")


def _run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # --no-sandbox: the sandbox refuses to start as root (CI containers); the profile in
    # the test's folder keeps the run from reading or writing a user's.
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    ancestors: list[str] = field(default_factory=list)  # ids and classes, outermost first


class _Dom(HTMLParser):
    """The elements of the DOM Chromium serialised, in document order, with their text and
    the ids and classes of the elements around them."""

    _VOID = frozenset({"meta", "br", "img", "input", "link", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        element.ancestors = [marker for e in self._open
                             for marker in (e.attrs.get("id", ""), e.attrs.get("class", ""))
                             if marker]
        self.elements.append(element)
        if tag not in self._VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self._VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data


def _dom(page: Path, profile: Path) -> list[Element]:
    parser = _Dom()
    parser.feed(_run_chromium(page, profile, "--dump-dom").stdout)
    return parser.elements


def _within(elements: list[Element], marker: str, tag: str) -> list[Element]:
    return [e for e in elements if e.tag == tag and marker in e.ancestors]


def _screenshot(page: Path, profile: Path, out: Path) -> Image.Image:
    _run_chromium(page, profile, f"--screenshot={out}", "--window-size=1280,6000")
    assert out.stat().st_size > 50_000, "the screenshot is (nearly) empty"
    return Image.open(out).convert("RGB")


def test_stored_run_in_headless_chromium(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "reports")
    page = write_html(load_run_json(run_dir / "run.json"), run_dir)
    dom = _dom(page, tmp_path / "profile")

    # Failures first: the failed scenario, then the one that errored, then the pass.
    sections = [e.attrs["id"] for e in dom if e.tag == "section"]
    assert sections == ["scenario-broker_outage_pause", "scenario-broken",
                        "scenario-steady_state"]
    # Within the failed scenario, the failed check first, with its message as data.
    rows = _within(dom, "scenario-broker_outage_pause", "tr")
    checks = [r for r in rows if "check" in r.attrs.get("class", "").split()]
    assert [r.attrs["class"] for r in checks] == \
        ["check check-fail", "check check-pass", "check check-pass"]
    assert checks[0].text.startswith("no_lost_updates")
    assert "3 published events were never processed: <e1>, <e2>, <e3>" in checks[0].text

    # A chart for each scenario with a timeline, the fault window labelled in it.
    assert len([e for e in dom if e.tag == "svg"]) == 2
    labels = [t.text.strip() for t in _within(dom, "scenario-broker_outage_pause", "text")]
    assert "pause:broker" in labels
    assert "recovered" in labels
    assert "pause:broker" not in \
        [t.text.strip() for t in _within(dom, "scenario-steady_state", "text")]
    no_timeline = _within(dom, "scenario-broken", "p")
    assert any(p.text == "no timeline recorded (history.jsonl is missing)" for p in no_timeline)

    # The replay command, and the logs linked where they are.
    (replay,) = [e for e in dom if e.attrs.get("id") == "replay"]
    assert replay.text == ("harness run broker_outage_pause broken --seed 7 --broker "
                           "rabbitmq --runtime processes --variant none")
    links = {a.attrs["href"] for a in _within(dom, "scenario-broker_outage_pause", "a")}
    assert {"broker_outage_pause/consumer.log", "broker_outage_pause/broker/rabbitmq.log"} \
        <= links
    assert all((run_dir / href).is_file() for href in links)

    image = _screenshot(page, tmp_path / "profile", tmp_path / "report.png")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, badges, charts: not a blank
    assert _SHADE in {c for _, c in colours}, "no shaded fault window in the screenshot"


def test_stored_bench_in_headless_chromium(tmp_path: Path) -> None:
    data = bench_data(REPLICATION)  # a real `bench replication --quick` on RabbitMQ
    folder = bench_folder(tmp_path / "reports", data)
    dom = _dom(write_bench_html(data, folder), tmp_path / "profile")

    # The figures that miss their target first, each a row of its own.
    rows = [e for e in dom if e.tag == "tr" and e.attrs.get("class", "").startswith("figure")]
    assert len(rows) == 16
    assert [r.attrs["class"] for r in rows[:4]] == \
        ["figure figure-not-met"] * 3 + ["figure figure-met"]
    assert [r.text for r in rows[:3] if "NOT met" in r.text] == [r.text for r in rows[:3]]
    assert "lag p99 at 200/s" in rows[0].text
    # Replication's four charts, their labels readable text in the DOM.
    assert len([e for e in dom if e.tag == "svg"]) == 4
    labels = {e.text.strip() for e in dom if e.tag == "text"}
    assert {"replication lag (ms)", "lag bound 1000 ms", "raw broker end-to-end p99",
            "recovery (median, min-max)", "pipeline drain"} <= labels
    (link,) = _within(dom, "pipeline", "a")
    assert (folder / link.attrs["href"]).is_file()


@pytest.mark.slow
def test_real_broker_pause_run_in_headless_chromium(leak_check: Path) -> None:
    (scenario,) = select_scenarios(["broker_outage_pause"])
    result, run_dir = run_scenarios([scenario], RunSettings(seed=20261130,
                                                            report_root=leak_check))
    page = run_dir / INDEX
    assert page.exists(), "the run wrote no index.html"
    dom = _dom(page, leak_check / "profile")
    verdict = result.scenarios[0].verdict
    assert [e.attrs["class"] for e in dom if e.tag == "section"] == \
        [f"scenario verdict-{verdict}"]
    assert len([e for e in dom if e.tag == "svg"]) == 1
    labels = [t.text.strip() for t in _within(dom, "scenario-broker_outage_pause", "text")]
    assert "pause:broker" in labels
    assert "replication lag (s)" in labels
    # The fault table gives the window as the run measured it.
    (fault,) = [e for e in dom if e.attrs.get("class") == "fault"]
    assert fault.text.startswith("pause:brokerbroker")
    (replay,) = [e for e in dom if e.attrs.get("id") == "replay"]
    assert replay.text == result.replay_command()
    image = _screenshot(page, leak_check / "profile", leak_check / "report.png")
    assert _SHADE in {c for _, c in image.getcolors(maxcolors=1 << 20) or []}
