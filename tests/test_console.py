"""The supervisor console in a real Chromium (Debian's ``chromium``, driven by Playwright): login, live
intake, reassignment seen by a second console, scope, a network drop, a stale reassignment, language.
Screenshots of the main views are saved to ``artifacts/console/`` (``RUJUK_ARTIFACTS`` overrides)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, LiveWorld
from tests.support.servers import ROOT, ServerProcess, graphql, login

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    if os.environ.get("RUJUK_REQUIRE_BROWSER"):
        raise RuntimeError("RUJUK_REQUIRE_BROWSER is set but Debian's chromium is not installed")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402

ARTIFACTS = Path(os.environ.get("RUJUK_ARTIFACTS", ROOT / "artifacts")) / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def console_server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(live_database_url, tmp_path_factory.mktemp("console"), RUJUK_EVENT_POLL_SECONDS="1")
    server.start()
    yield server
    server.stop()
    assert "Traceback" not in server.output(), server.output()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


async def open_console(browser: Browser, base: str, username: str) -> Page:
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="id-ID")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"{base}/console")
    await expect(page.locator("form[action='/console/login']")).to_be_visible()
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#connection")).to_have_text("Terhubung", timeout=10_000)
    return page


async def household(base: str, token: str, world: LiveWorld, desa: str, serial: int) -> str:
    kec = world.code(desa)[: len(world.code(".74.01"))]
    body = await graphql(base, """mutation($i: RegisterHouseholdInput!) { registerHousehold(input: $i) {
        household { id } errors { code } } }""", {"i": {
        "regionCode": world.code(desa), "address": f"Jl. Sudirman {serial}",
        "familyCards": [kec.replace(".", "") + f"1111{serial:06d}"],
        "members": [{"name": f"Warga {serial}", "sex": "FEMALE", "birthDate": "1985-02-03", "relation": "HEAD"}]}},
        token)
    assert body["data"]["registerHousehold"]["errors"] == [], body
    hid: str = body["data"]["registerHousehold"]["household"]["id"]
    return hid


async def file(base: str, token: str, household_id: str, description: str, sector: str = "HEALTH") -> str:
    body = await graphql(base, """mutation($i: FileComplaintInput!) { fileComplaint(input: $i) {
        complaint { id } errors { code } } }""", {"i": {"householdId": household_id, "sector": sector,
                                                       "description": description, "priority": "URGENT"}}, token)
    assert body["data"]["fileComplaint"]["errors"] == [], body
    cid: str = body["data"]["fileComplaint"]["complaint"]["id"]
    return cid


async def test_live_intake_reassignment_and_scope(console_server: ServerProcess, browser: Browser,
                                                  live_world: LiveWorld) -> None:
    base = console_server.http
    fac_a1 = await login(base, live_world.staff["fac_a1"].username, PASSWORD)
    fac_b1 = await login(base, live_world.staff["fac_b1"].username, PASSWORD)
    hid = await household(base, fac_a1, live_world, ".74.01.1001", 1)
    other = await household(base, fac_b1, live_world, ".74.02.1001", 2)
    first = await open_console(browser, base, live_world.staff["sup_a"].username)
    second = await open_console(browser, base, live_world.staff["sup_a2"].username)
    await first.screenshot(path=ARTIFACTS / "01-feed-and-workload.png")

    started = time.monotonic()
    cid = await file(base, fac_a1, hid, "Ibu hamil belum terdaftar PBI-JK")
    row = first.locator(f"[id='case-{cid}']")
    await expect(row).to_be_visible(timeout=1000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"the complaint took {elapsed:.2f}s to appear"
    await expect(row).to_have_class(re.compile(r"\bfresh\b"))
    await expect(second.locator(f"[id='case-{cid}']")).to_be_visible(timeout=1000)
    await first.screenshot(path=ARTIFACTS / "02-new-intake.png")

    foreign = await file(base, fac_b1, other, "Keluhan dari kecamatan lain")
    await first.wait_for_timeout(1500)
    assert await first.locator(f"[id='case-{foreign}']").count() == 0
    assert await second.locator(f"[id='case-{foreign}']").count() == 0

    # keyboard: focus the row, Enter opens the case
    await row.focus()
    await first.keyboard.press("Enter")
    dialog = first.locator("#detail")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Ibu hamil belum terdaftar PBI-JK")
    await first.screenshot(path=ARTIFACTS / "03-case-detail.png")
    target = live_world.staff["fac_a1b"]
    board_row = first.locator(f"#workload tr[data-staff='{to_gid(target.id)}'] td.open")
    before = int(await board_row.text_content() or 0) if await board_row.count() else 0
    await first.select_option("#act-target", to_gid(target.id))
    await first.fill("#act-reason", "Fasilitator cuti, dialihkan")
    await first.click("#act-reassign")
    await expect(first.locator("#banner")).to_have_text("Tersimpan.")
    await expect(first.locator(f"[id='case-{cid}'] td.assignee")).to_have_text(target.full_name)
    await expect(second.locator(f"[id='case-{cid}'] td.assignee")).to_have_text(target.full_name, timeout=2000)
    await expect(first.locator(f"#workload tr[data-staff='{to_gid(target.id)}'] td.open")).to_have_text(
        str(before + 1), timeout=3000)
    await expect(second.locator(f"#workload tr[data-staff='{to_gid(target.id)}'] td.open")).to_have_text(
        str(before + 1), timeout=3000)
    await first.locator("#detail-close").click()
    await second.screenshot(path=ARTIFACTS / "04-second-console-after-reassign.png")
    assert first.errors == [] and second.errors == []  # type: ignore[attr-defined]
    await first.context.close()
    await second.context.close()


def to_gid(pk: int) -> str:
    from schema.relay import to_global_id

    return str(to_global_id("Staff", pk))


class Proxy:
    """A TCP proxy between the browser and the server: ``drop()`` cuts every connection and refuses new ones
    until ``restore()``, like a district office losing its internet."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.down = False
        self._pipes: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._pipes -= {writer, up_writer}

    def drop(self) -> None:
        self.down = True
        for w in list(self._pipes):
            w.transport.abort()
        self._pipes.clear()

    def restore(self) -> None:
        self.down = False

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()


async def test_network_drop_and_reconnect_misses_nothing(console_server: ServerProcess, browser: Browser,
                                                         live_world: LiveWorld) -> None:
    base = console_server.http
    proxy = await Proxy(console_server.port).start()
    try:
        fac = await login(base, live_world.staff["fac_a1"].username, PASSWORD)
        hid = await household(base, fac, live_world, ".74.01.1001", 3)
        page = await open_console(browser, f"http://127.0.0.1:{proxy.port}", live_world.staff["sup_a"].username)
        before = await file(base, fac, hid, "Sebelum gangguan jaringan")
        await expect(page.locator(f"[id='case-{before}']")).to_be_visible(timeout=2000)
        proxy.drop()
        await expect(page.locator("#connection")).to_have_text("Menyambung ulang…", timeout=5000)
        await page.screenshot(path=ARTIFACTS / "05-connection-lost.png")
        during = [await file(base, fac, hid, f"Saat jaringan putus {i}", s)
                  for i, s in enumerate(["FOOD", "EDUCATION", "HOUSING"])]
        await page.wait_for_timeout(1500)
        proxy.restore()
        await expect(page.locator("#connection")).to_have_text("Terhubung", timeout=15_000)
        for cid in during:
            await expect(page.locator(f"[id='case-{cid}']")).to_be_visible(timeout=3000)
        after = await file(base, fac, hid, "Setelah tersambung kembali")
        await expect(page.locator(f"[id='case-{after}']")).to_be_visible(timeout=1500)
        rows = await page.locator("#feed tr").evaluate_all("rows => rows.map(r => r.id)")
        assert len(rows) == len(set(rows)), "a complaint appears twice after the reconnect"
        await page.context.close()
    finally:
        await proxy.stop()


async def test_stale_reassignment_shows_the_conflict_and_fresh_state(console_server: ServerProcess,
                                                                     browser: Browser, live_world: LiveWorld) -> None:
    base = console_server.http
    fac = await login(base, live_world.staff["fac_a1"].username, PASSWORD)
    manager = await login(base, live_world.staff["manager"].username, PASSWORD)
    hid = await household(base, fac, live_world, ".74.01.1001", 4)
    cid = await file(base, fac, hid, "Anak belum menerima KIP", "EDUCATION")
    page = await open_console(browser, base, live_world.staff["sup_a"].username)
    held: list[Any] = []
    hold = asyncio.Event()

    async def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if hold.is_set():
                held.append(message)
            else:
                ws.send(message)
        server.on_message(to_page)

    await page.route_web_socket("**/graphql", route)
    await page.reload()
    await expect(page.locator("#connection")).to_have_text("Terhubung", timeout=10_000)
    await page.locator(f"[id='case-{cid}']").click()
    await expect(page.locator("#detail")).to_be_visible()
    hold.set()  # the page stops hearing live updates, like a slow link
    moved = await graphql(base, """mutation($i: ReassignComplaintInput!) { reassignComplaint(input: $i) {
        complaint { version } errors { code } } }""", {"i": {
        "id": cid, "expectedVersion": 1, "assigneeId": to_gid(live_world.staff["fac_a1b"].id),
        "reason": "dipindah oleh manajer"}}, manager)
    assert moved["data"]["reassignComplaint"]["errors"] == []
    await page.fill("#act-reason", "Beban kerja")
    await page.click("#act-reassign")
    message = page.locator("#detail-message")
    await expect(message).to_be_visible()
    await expect(message).to_contain_text("baru saja diubah orang lain")
    await expect(page.locator("#detail")).to_contain_text(live_world.staff["fac_a1b"].full_name)
    await page.screenshot(path=ARTIFACTS / "06-stale-conflict.png")
    await page.context.close()


async def test_language_session_and_console_boundaries(console_server: ServerProcess, browser: Browser,
                                                      live_world: LiveWorld) -> None:
    base = console_server.http
    page = await open_console(browser, base, live_world.staff["sup_a"].username)
    await page.click("a.lang")
    await expect(page.locator("header h1")).to_have_text("SLRT Supervisor Console")
    await expect(page.locator("#connection")).to_have_text("Connected", timeout=10_000)
    await page.screenshot(path=ARTIFACTS / "07-english.png")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    session = cookies["rujuk_console"]
    await page.click("text=Log out")
    await expect(page.locator("form[action='/console/login']")).to_be_visible()
    await page.context.close()
    async with httpx.AsyncClient(base_url=base, cookies={"rujuk_console": session}) as http:
        # the cookie without the console's header, or from another origin, is no credential for the API
        plain = (await http.post("/graphql", json={"query": "{ me { username } }"})).json()
        assert plain["data"]["me"] is None
        foreign = (await http.post("/graphql", json={"query": "{ me { username } }"},
                                   headers={"x-rujuk-console": "1", "origin": "http://evil.example"})).json()
        assert foreign["data"]["me"] is None
        own = (await http.post("/graphql", json={"query": "{ me { username } }"},
                               headers={"x-rujuk-console": "1", "origin": base})).json()
        assert own["data"]["me"]["username"] == live_world.staff["sup_a"].username
    async with httpx.AsyncClient(base_url=base, cookies={"rujuk_console": "garbage.token"}) as http:
        expired = await http.get("/console")
        assert expired.status_code == 303 and "expired=1" in expired.headers["location"]
    async with httpx.AsyncClient(base_url=base) as http:
        refused = await http.post("/console/login", data={"username": live_world.staff["fac_a1"].username,
                                                          "password": PASSWORD}, headers={"origin": base})
        assert refused.status_code == 401 and "rujuk_console" not in refused.cookies
        cross = await http.post("/console/login", data={"username": live_world.staff["sup_a"].username,
                                                        "password": PASSWORD}, headers={"origin": "http://evil.example"})
        assert cross.status_code == 403
