"""`workbench serve` refuses whoever has no token, a foreign Origin or a foreign Host (issue 22, item 2)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import aiohttp  # textual-serve's own dependency
import psutil  # dask.distributed's dependency
import pytest
import textual_serve  # noqa: F401  (in the test extras: missing, these tests fail rather than skip)

from tests.helpers.process import free_port


@pytest.fixture
def served(session_root):
    """A real `workbench serve` process; yields (base url, token)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "--session", "web", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stderr.readline()  # the first line names the URL with its token
    match = re.search(r"http://localhost:(\d+)/\?token=([\w-]+)", line)
    assert match, line
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://localhost:{port}", match.group(2)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()


async def test_serve_requires_the_token_and_its_own_origin(served):
    base, token = served
    port = base.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as http:
        # no token: the page and the websocket are refused
        async with http.get(base + "/") as r:
            assert r.status == 403 and "token" in await r.text()
        async with http.get(base + "/?token=wrong" + token[:4]) as r:
            assert r.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(base + "/ws", headers={"Origin": base})
        assert err.value.status == 403
        # the token with a foreign Origin (a web page reaching localhost): refused
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(f"{base}/ws?token={token}", headers={"Origin": "http://evil.example"})
        assert err.value.status == 403
        # a foreign Host (DNS rebinding): refused even with the token
        async with http.get(f"{base}/?token={token}", headers={"Host": f"evil.example:{port}"}) as r:
            assert r.status == 403
        # the printed URL works, and its cookie lets the page's websocket in
        async with http.get(f"{base}/?token={token}") as r:
            assert r.status == 200 and "/ws" in await r.text()
        ws = await http.ws_connect(base + "/ws?width=80&height=24", headers={"Origin": base})
        await ws.close()


def test_serve_answers_on_localhost_only(served):
    import urllib.request

    base, token = served
    port = int(base.rsplit(":", 1)[1])
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=10).read().decode()
    assert "workbench web" in page  # the page title names the session
    listening = {c.laddr.ip for c in psutil.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert listening and listening <= {"127.0.0.1", "::1"}, listening  # never 0.0.0.0 or a LAN address


def test_guard_rules_without_a_server():
    from aiohttp.test_utils import make_mocked_request

    from workbench.serve import GuardedServer

    server = GuardedServer("true", port=8123, token="s3cret")
    ok = {"Host": "localhost:8123", "Origin": "http://localhost:8123"}
    assert server.refusal(make_mocked_request("GET", "/?token=s3cret", headers=ok)) is None
    assert server.refusal(make_mocked_request("GET", "/ws", headers={**ok, "Cookie": "workbench-token-8123=s3cret"})) is None
    assert "token" in server.refusal(make_mocked_request("GET", "/ws", headers=ok))
    assert "Origin" in server.refusal(make_mocked_request(
        "GET", "/ws?token=s3cret", headers={**ok, "Origin": "http://localhost:9999"}))  # another port's page
    assert "Origin" in server.refusal(make_mocked_request(
        "GET", "/ws?token=s3cret", headers={"Host": "localhost:8123"}))  # a websocket always has one
    assert server.refusal(make_mocked_request("GET", "/static/js/textual.js", headers={"Host": "127.0.0.1:8123"})) is None
    assert "Host" in server.refusal(make_mocked_request("GET", "/static/x", headers={"Host": "0.0.0.0:8123"}))
    assert server.host == "localhost"
