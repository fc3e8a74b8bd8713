"""The supervisor console: server-rendered pages (jinja2) and static assets, all served by rujuk itself.

Login sets an HttpOnly, SameSite=Strict session cookie holding a signed access token for one working day.
The page's script calls the same GraphQL API as everyone else with that cookie; the API accepts the cookie
only with the console's own header and a same-origin ``Origin`` (so another site cannot use it), so no
console request can do what the same user could not do through the API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from console.i18n import STRINGS, language
from domain.actor import Op
from domain.errors import DomainError
from domain.staff.service import active_staff, actor_of, authenticate
from server.context import Services

HERE = Path(__file__).parent
SESSION_COOKIE = "rujuk_console"
LANG_COOKIE = "rujuk_lang"
CONSOLE_HEADER = "x-rujuk-console"
SESSION_TTL = 8 * 3600

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def same_origin(request: Request) -> bool:
    """A browser request from the console's own origin (or one that names none, like a form post from an
    old browser, only for safe methods)."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.method in {"GET", "HEAD"}
    host = request.headers.get("host", "")
    return origin in {f"http://{host}", f"https://{host}"}


def console_routes(services: Callable[[], Services]) -> list[BaseRoute]:
    def render(name: str, request: Request, status: int = 200, **values: object) -> HTMLResponse:
        lang = language(request.cookies.get(LANG_COOKIE))
        strings = Markup(json.dumps(STRINGS[lang]).replace("<", "\\u003c"))
        html = templates.get_template(name).render(t=STRINGS[lang], lang=lang, strings=strings,
                                                   **values)
        response = HTMLResponse(html, status_code=status)
        response.headers["content-security-policy"] = (
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "same-origin"
        response.headers["cache-control"] = "no-store"
        return response

    async def page(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return RedirectResponse("/console/login", status_code=303)
        svc = services()
        try:
            claims = svc.signer.verify(token, "access")
            async with svc.sessionmaker() as session:
                staff = await active_staff(session, staff_id=claims.staff_id)
        except DomainError:
            response = RedirectResponse("/console/login?" + urlencode({"expired": "1"}), status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        return render("console.html", request, staff=staff, role=staff.role)

    async def login_form(request: Request) -> Response:
        return render("login.html", request, error=None, expired=request.query_params.get("expired") == "1")

    async def login(request: Request) -> Response:
        if not same_origin(request):
            return render("login.html", request, status=403, error="error", expired=False)
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        svc = services()
        try:
            async with svc.sessionmaker() as session:
                staff = await authenticate(session, username=username[:80], password=password[:200])
            actor_of(staff).require(Op.VIEW_WORKLOAD)
        except DomainError:
            return render("login.html", request, status=401, error="login_failed", expired=False)
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(SESSION_COOKIE, svc.signer.issue(staff.id, "access", ttl=SESSION_TTL), max_age=SESSION_TTL,
                            httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def switch_language(request: Request) -> Response:
        lang = language(request.query_params.get("to"))
        back = "/console/login" if request.headers.get("referer", "").endswith("/console/login") else "/console"
        response = RedirectResponse(back, status_code=303)
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/")
        return response

    return [
        Route("/console", page, methods=["GET"]),
        Route("/console/login", login_form, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route("/console/language", switch_language, methods=["GET"]),
        Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
    ]
