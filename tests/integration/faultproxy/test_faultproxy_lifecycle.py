"""Starting and stopping the fault proxy: CLI, in-process server, leaks, benchmark."""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
import threading
import urllib.request
import warnings

import pytest
from faultproxy_testkit import PeerServer, connect, round_trip

from harness.faultproxy import FaultProxyServer
from harness.faultproxy.bench import run_bench

pytestmark = pytest.mark.integration


def _post(url: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=3) as reply:
        result: dict[str, object] = json.load(reply)
    return result


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_then_exits_cleanly_on_signal(
    signum: signal.Signals, echo_server: PeerServer
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.faultproxy", "--host", "127.0.0.1", "--port", "0",
         "--seed", "7"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("faultproxy listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert not url.endswith(":0")
        with urllib.request.urlopen(f"{url}/version", timeout=3) as reply:
            assert json.load(reply) == {"version": "2.12.0"}
        listen = str(_post(f"{url}/proxies", {"name": "cli", "upstream": echo_server.address,
                                              "listen": "127.0.0.1:0"})["listen"])
        sock = connect(listen)
        round_trip(sock)
        process.send_signal(signum)
        _stdout, stderr = process.communicate(timeout=5)
        assert process.returncode == 0
        assert "Traceback" not in stderr
        assert sock.recv(10) == b""  # open connections were closed on the way out
        sock.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_server_stop_closes_everything_without_leaks(echo_server: PeerServer) -> None:
    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server = FaultProxyServer()
        server.start()
        listen = str(_post(f"{server.api_url}/proxies",
                           {"name": "leak", "upstream": echo_server.address})["listen"])
        _post(f"{server.api_url}/proxies/leak/toxics", {"type": "latency", "stream": "upstream",
                                                         "attributes": {"latency": 1}})
        socks = [connect(listen) for _ in range(3)]
        for sock in socks:
            round_trip(sock)
        server.stop()
        for sock in socks:
            assert sock.recv(10) == b""
            sock.close()
        server.stop()  # idempotent
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    leftover = [t for t in set(threading.enumerate()) - before if t.name == "faultproxy"]
    assert leftover == []
    with pytest.raises(ConnectionRefusedError):
        connect(listen).close()


def test_server_reports_start_failure() -> None:
    with FaultProxyServer() as first, pytest.raises(Exception, match="could not start"):
        FaultProxyServer(port=first.port).start()


def test_bench_runs_and_returns_sane_values() -> None:
    result = run_bench(0.4)
    assert result["throughput_ratio"] > 0
    assert result["direct_mbps"] > 0 and result["proxy_mbps"] > 0
    assert result["proxy_p50_ms"] > 0
    assert set(result) >= {"throughput_ratio", "added_p50_ms"}
