"""Status codes, error bodies, headers and JSON shapes of the raw HTTP API."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from faultproxy_testkit import PeerServer, connect, listen_port, round_trip

pytestmark = pytest.mark.integration

TEXT = "text/plain; charset=utf-8"


def error_of(response: httpx.Response) -> tuple[int, str]:
    """Check the Toxiproxy error envelope and return (status, message)."""
    assert response.headers["content-type"] == TEXT
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text.endswith("}\n")
    body = response.json()
    assert list(body) == ["error", "status"]
    assert body["status"] == response.status_code
    return response.status_code, body["error"]


def create(api: httpx.Client, name: str = "p", upstream: str = "127.0.0.1:1",
           **extra: object) -> httpx.Response:
    return api.post("/proxies", json={"name": name, "upstream": upstream,
                                      "listen": "127.0.0.1:0", **extra})


def test_unknown_path_is_a_plain_404(api: httpx.Client) -> None:
    for path in ("/nope", "/proxies/", "/proxies/a/toxics/b/c"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.text == "404 page not found\n"
        assert response.headers["content-type"] == TEXT


def test_wrong_method_is_an_empty_405(api: httpx.Client) -> None:
    for method, path in (("DELETE", "/proxies"), ("PUT", "/proxies/x"), ("GET", "/reset"),
                         ("POST", "/version"), ("PATCH", "/proxies/x/toxics")):
        response = api.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.content == b""


def test_browser_user_agent_is_refused(api: httpx.Client) -> None:
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    response = api.get("/proxies", headers=browser)
    assert response.status_code == 403
    assert response.text == "User agent not allowed\n"
    assert api.get("/nope", headers=browser).status_code == 404
    assert api.get("/proxies", headers={"User-Agent": "curl/8.0"}).status_code == 200


def test_create_reply_shape_and_headers(api: httpx.Client) -> None:
    response = create(api, "shape")

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-toxiproxy-request-id"]
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
    assert body["toxics"] == [] and body["enabled"] is True
    assert response.text.startswith('{"name":"shape","listen":"127.0.0.1:')  # compact JSON


def test_listen_is_rewritten_to_the_bound_address(api: httpx.Client) -> None:
    body = api.post("/proxies", json={"name": "lh", "upstream": "127.0.0.1:1",
                                      "listen": "localhost:0"}).json()
    assert body["listen"].startswith("127.0.0.1:")
    port = listen_port(body["listen"])
    assert port != 0

    disabled = api.post("/proxies", json={"name": "off", "upstream": "127.0.0.1:1",
                                          "listen": "localhost:0", "enabled": False}).json()
    assert disabled["listen"] == "localhost:0"  # echoed as given while not listening

    api.post("/proxies/lh", json={"enabled": False})
    again = api.post("/proxies/lh", json={"enabled": True}).json()
    assert again["listen"] == f"127.0.0.1:{port}"  # a port-0 proxy keeps its port


def test_create_errors(api: httpx.Client) -> None:
    assert error_of(api.post("/proxies", content=b"")) == (400, "bad request body: EOF")
    status, message = error_of(api.post("/proxies", content=b"{not json"))
    assert status == 400 and message.startswith("bad request body: invalid character")
    status, message = error_of(api.post("/proxies", content=b'{"name": 5}'))
    assert status == 400 and "cannot unmarshal number" in message
    assert error_of(api.post("/proxies", json={"upstream": "x:1"})) == (
        400, "missing required field: name")
    assert error_of(api.post("/proxies", json={"name": "x"})) == (
        400, "missing required field: upstream")
    assert create(api, "dup").status_code == 201
    assert error_of(create(api, "dup")) == (409, "proxy already exists")


def test_bind_failure_is_a_500_and_creates_nothing(api: httpx.Client) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        response = api.post("/proxies", json={"name": "clash", "upstream": "127.0.0.1:1",
                                              "listen": f"127.0.0.1:{port}"})
    status, message = error_of(response)
    assert status == 500
    assert message == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert api.get("/proxies/clash").status_code == 404


def test_keys_are_case_insensitive(api: httpx.Client) -> None:
    response = api.post("/proxies", json={"Name": "caps", "UPSTREAM": "127.0.0.1:1",
                                          "Listen": "127.0.0.1:0"})
    assert response.status_code == 201
    toxic = api.post("/proxies/caps/toxics", json={"Type": "latency", "Stream": "UpStream",
                                                   "Attributes": {"LATENCY": 7}})
    assert toxic.status_code == 200
    # The stream is matched case-insensitively but echoed (and used in the name) as sent.
    assert toxic.json() == {"attributes": {"latency": 7, "jitter": 0},
                            "name": "latency_UpStream", "type": "latency",
                            "stream": "UpStream", "toxicity": 1}


def test_proxy_show_update_delete(api: httpx.Client, echo_server: PeerServer) -> None:
    create(api, "crud", upstream=echo_server.address)
    assert api.get("/proxies/crud").json()["name"] == "crud"
    assert error_of(api.get("/proxies/missing")) == (404, "proxy not found")

    updated = api.patch("/proxies/crud", json={"enabled": False})
    assert updated.status_code == 200 and updated.json()["enabled"] is False
    assert error_of(api.patch("/proxies/missing", json={})) == (404, "proxy not found")
    assert error_of(api.post("/proxies/crud", content=b"")) == (400, "bad request body: EOF")

    listing = api.get("/proxies").json()
    assert list(listing) == ["crud"]

    deleted = api.delete("/proxies/crud")
    assert deleted.status_code == 204 and deleted.content == b""
    assert error_of(api.delete("/proxies/crud")) == (404, "proxy not found")
    assert api.get("/proxies").json() == {}


def test_update_upstream_restarts_the_proxy(api: httpx.Client, echo_server: PeerServer) -> None:
    listen = create(api, "move", upstream="127.0.0.1:1").json()["listen"]
    body = api.post("/proxies/move", json={"upstream": echo_server.address}).json()
    assert body["upstream"] == echo_server.address and body["listen"] == listen
    with connect(listen) as sock:
        round_trip(sock)


def test_toxic_defaults_order_and_codes(api: httpx.Client) -> None:
    create(api, "tox")
    created = api.post("/proxies/tox/toxics", json={"type": "slicer"})
    assert created.status_code == 200  # not 201, as in Toxiproxy
    assert created.text == (
        '{"attributes":{"average_size":0,"size_variation":0,"delay":0},'
        '"name":"slicer_downstream","type":"slicer","stream":"downstream","toxicity":1}'
    )
    upstream = api.post("/proxies/tox/toxics",
                        json={"type": "noop", "stream": "upstream", "toxicity": 0.3}).json()
    assert upstream == {"attributes": {}, "name": "noop_upstream", "type": "noop",
                        "stream": "upstream", "toxicity": 0.3}
    # Listed upstream first, then downstream, each in insertion order.
    names = [t["name"] for t in api.get("/proxies/tox/toxics").json()]
    assert names == ["noop_upstream", "slicer_downstream"]
    assert [t["name"] for t in api.get("/proxies/tox").json()["toxics"]] == names
    assert api.get("/proxies/tox/toxics/noop_upstream").json() == upstream


def test_toxic_errors(api: httpx.Client) -> None:
    create(api, "te")
    post = lambda body: api.post("/proxies/te/toxics", json=body)  # noqa: E731
    assert error_of(post({"type": "latency", "stream": "sideways"})) == (
        400, "stream was invalid, can be either upstream or downstream")
    assert error_of(post({"type": "latency", "stream": ""}))[0] == 400
    assert error_of(post({"type": "bogus"})) == (400, "invalid toxic type")
    assert error_of(post({})) == (400, "invalid toxic type")
    status, message = error_of(post({"type": "latency", "attributes": {"latency": 100.5}}))
    assert status == 400
    assert message.startswith("bad request body: json: cannot unmarshal number 100.5")
    assert error_of(post({"type": "latency", "attributes": {"latency": 100.0}}))[0] == 400
    assert error_of(api.post("/proxies/te/toxics", content=b"[1]"))[0] == 400
    assert post({"type": "latency"}).status_code == 200
    assert error_of(post({"type": "latency"})) == (409, "toxic already exists")
    # Names are unique across both directions.
    assert error_of(post({"type": "noop", "stream": "upstream",
                          "name": "latency_downstream"}))[0] == 409
    assert error_of(api.post("/proxies/nope/toxics", json={"type": "latency"})) == (
        404, "proxy not found")
    assert error_of(api.get("/proxies/te/toxics/nope")) == (404, "toxic not found")
    assert error_of(api.delete("/proxies/te/toxics/nope")) == (404, "toxic not found")
    assert error_of(api.get("/proxies/nope/toxics")) == (404, "proxy not found")


def test_toxic_update_merges_attributes(api: httpx.Client) -> None:
    create(api, "upd")
    api.post("/proxies/upd/toxics", json={"type": "latency", "name": "lat",
                                          "attributes": {"latency": 100, "jitter": 20}})

    patched = api.patch("/proxies/upd/toxics/lat", json={"attributes": {"latency": 50}})
    assert patched.status_code == 200
    assert patched.json()["attributes"] == {"latency": 50, "jitter": 20}
    posted = api.post("/proxies/upd/toxics/lat", json={"toxicity": 0.5, "type": "timeout"})
    assert posted.json()["toxicity"] == 0.5 and posted.json()["type"] == "latency"
    assert error_of(api.patch("/proxies/upd/toxics/nope", json={})) == (404, "toxic not found")

    assert api.delete("/proxies/upd/toxics/lat").status_code == 204
    assert api.get("/proxies/upd/toxics").json() == []


def test_populate(api: httpx.Client, echo_server: PeerServer) -> None:
    entries = [{"name": "a", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
               {"name": "b", "upstream": echo_server.address, "listen": "127.0.0.1:0",
                "enabled": False}]
    response = api.post("/populate", json=entries)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["a", "b"]
    assert [p["enabled"] for p in proxies] == [True, False]

    # An unchanged entry keeps the running proxy, its toxics and its state.
    api.post("/proxies/a/toxics", json={"type": "noop"})
    same = [{"name": "a", "upstream": echo_server.address, "listen": proxies[0]["listen"],
             "enabled": False}]
    kept = api.post("/populate", json=same).json()["proxies"][0]
    assert kept["enabled"] is True and len(kept["toxics"]) == 1

    assert api.post("/populate", json=[]).json() == {"proxies": None}


def test_populate_errors(api: httpx.Client) -> None:
    bad = api.post("/populate", json=[{"name": "ok", "upstream": "x:1"}, {"upstream": "x:1"}])
    assert bad.status_code == 400
    assert bad.json() == {"error": "missing required field: name at proxy 2", "status": 400,
                          "proxies": None}
    assert api.get("/proxies").json() == {}  # validated before anything was created
    assert api.post("/populate", json={"name": "x"}).status_code == 400

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        clash = api.post("/populate", json=[
            {"name": "first", "upstream": "x:1", "listen": "127.0.0.1:0"},
            {"name": "second", "upstream": "x:1", "listen": f"127.0.0.1:{port}"}])
    assert clash.status_code == 500
    assert clash.headers["content-type"] == "application/json"
    body = clash.json()
    assert list(body) == ["error", "status", "proxies"]
    assert [p["name"] for p in body["proxies"]] == ["first"]


def test_reset_and_version(api: httpx.Client) -> None:
    create(api, "rs")
    api.post("/proxies/rs/toxics", json={"type": "latency"})
    api.post("/proxies/rs", json={"enabled": False})

    response = api.post("/reset")
    assert response.status_code == 204 and response.content == b""
    body = api.get("/proxies/rs").json()
    assert body["enabled"] is True and body["toxics"] == []

    version = api.get("/version")
    assert version.status_code == 200
    assert version.headers["content-type"] == "application/json;charset=utf-8"
    assert version.text == '{"version": "2.12.0"}\n'
    assert json.loads(version.text) == {"version": "2.12.0"}
