"""End to end over HTTP against a real uvicorn process: login, intake, reads, and hostile requests that must
get clear 4xx answers (never a 500, a traceback or SQL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, LiveWorld

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {**os.environ, "RUJUK_DATABASE_URL": live_database_url, "RUJUK_ENV": "test",
           "RUJUK_RATE_LIMIT": "10000", "RUJUK_RATE_BURST": "10000", "RUJUK_ANONYMOUS_RATE_LIMIT": "10000",
           "RUJUK_ANONYMOUS_RATE_BURST": "10000"}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "server.asgi:app", "--port", str(port),
                                 "--host", "127.0.0.1", "--no-access-log"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("uvicorn did not become ready:\n" + log.read_text())
    yield base
    proc.terminate()
    proc.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()


async def gql(base: str, query: str, variables: dict[str, object] | None = None,
              token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{base}/graphql", json={"query": query, "variables": variables or {}},
                               headers=headers)


LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken errors { code } } }"


async def login(base: str, username: str) -> str:
    body = (await gql(base, LOGIN, {"u": username, "p": PASSWORD})).json()
    token: str = body["data"]["login"]["accessToken"]
    return token


async def test_login_register_file_and_read_back(server: str, live_world: LiveWorld) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server}/healthz")).text == "ok"
    bad = (await gql(server, LOGIN, {"u": live_world.staff["fac_a1"].username, "p": "wrong"})).json()
    assert bad["data"]["login"] == {"accessToken": None, "errors": [{"code": "INVALID_CREDENTIALS"}]}
    token = await login(server, live_world.staff["fac_a1"].username)
    me = (await gql(server, "{ me { username role regionCode } }", token=token)).json()
    assert me["data"]["me"]["role"] == "FACILITATOR"
    kec = live_world.code(".74.01")
    registered = (await gql(server, """mutation($i: RegisterHouseholdInput!) { registerHousehold(input: $i) {
        household { id } errors { code } } }""", {"i": {
        "regionCode": live_world.code(".74.01.1001"), "address": "Jl. Imam Bonjol 5",
        "familyCards": [kec.replace(".", "") + "0101200001"],
        "members": [{"name": "Rahmat Lubis", "sex": "MALE", "birthDate": "1975-08-17", "relation": "HEAD"}]}},
        token=token)).json()
    assert registered["data"]["registerHousehold"]["errors"] == []
    hid = registered["data"]["registerHousehold"]["household"]["id"]
    filed = (await gql(server, """mutation($i: FileComplaintInput!) { fileComplaint(input: $i) {
        complaint { id status slaState } errors { code } } }""", {"i": {
        "householdId": hid, "sector": "EDUCATION", "description": "Anak tidak menerima KIP"}}, token=token)).json()
    assert filed["data"]["fileComplaint"]["complaint"]["status"] == "NEW"
    sup = await login(server, live_world.staff["sup_a"].username)
    listed = (await gql(server, "{ complaints(filter: {status: [NEW]}) { totalCount edges { node { id } } } }",
                 token=sup)).json()
    assert filed["data"]["fileComplaint"]["complaint"]["id"] in [e["node"]["id"] for e in
                                                                 listed["data"]["complaints"]["edges"]]
    other = await login(server, live_world.staff["sup_b"].username)
    hidden = (await gql(server, "{ complaints { edges { node { id } } } }", token=other)).json()
    assert hidden["data"]["complaints"]["edges"] == []


async def test_hostile_requests_get_clear_client_errors(server: str) -> None:
    url = f"{server}/graphql"
    async with httpx.AsyncClient(timeout=10) as http:
        broken = await http.post(url, content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 400
        syntax_response = await http.post(url, json={"query": "{ me { username } "})
        get_mutation = await http.get(url, params={"query": 'mutation { login(username: "a", password: "b") { '
                                                            "accessToken } }"})
        form = await http.post(url, data={"query": "{ me { username } }"})
    assert syntax_response.status_code in {200, 400}
    syntax = syntax_response.json()
    assert syntax["errors"][0]["message"].startswith("Syntax Error")
    assert get_mutation.status_code in {400, 405}
    assert form.status_code in {400, 415}
    anon = (await gql(server, "{ complaints { edges { node { id } } } }")).json()
    assert anon["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = (await gql(server, "{ me { username } }", token="eyJzdWIiOjF9.forged")).json()
    assert forged["data"]["me"] is None
    deep = "{ me { " + "region { children { " * 10 + "code" + " } }" * 10 + " } }"
    too_deep = (await gql(server, deep, token=None)).json()
    assert "exceeds maximum operation depth" in too_deep["errors"][0]["message"]
    for response in (syntax, anon, too_deep):
        text = str(response)
        assert "Traceback" not in text and "SELECT" not in text and "asyncpg" not in text
