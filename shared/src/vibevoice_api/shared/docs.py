"""``/docs`` (Swagger UI) and ``/redoc`` with their assets served by this process, never from a CDN.

FastAPI's own pages load Swagger UI and ReDoc from cdn.jsdelivr.net: blank pages on the offline networks
where GPU servers often live. The assets ship in the ``fastapi-offline`` wheel; we serve them under
``/docs/assets/`` and send the pages with a Content-Security-Policy that lets them reach this origin only
(their one inline bootstrap script is allowed by its hash). ReDoc's sidebar shows a logo it fetches from
its vendor's CDN: our copy of the bundle gets an empty image instead, which ReDoc hides.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(str(files("fastapi_offline").joinpath("static")))
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)
REDOC_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'


@cache
def redoc_bundle() -> bytes:
    """ReDoc's standalone bundle with its one remote image (a logo) replaced by an empty one."""
    return (ASSETS_DIR / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b'"data:,"')


def _with_csp(page: HTMLResponse) -> HTMLResponse:
    """The page with a CSP: this origin only; its inline scripts by hash; runtime styles (both UIs inject them)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in INLINE_SCRIPT.finditer(page.body)
    )
    csp = "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {hashes}".strip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "worker-src 'self' blob:",
            "connect-src 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )
    headers = {"content-security-policy": csp, "x-content-type-options": "nosniff"}
    return HTMLResponse(page.body, headers=headers)


def _page(app: FastAPI, request: Request, ui: str) -> tuple[dict[str, str], Callable[[str], str]]:
    """What both pages need: their openapi_url and title, and the URL of an asset (behind a proxy's root_path)."""
    root = request.scope.get("root_path", "")
    page = {"openapi_url": root + (app.openapi_url or "/openapi.json"), "title": f"{app.title} - {ui}"}
    return page, lambda name: f"{root}{ASSETS_URL}/{name}"


def install_docs(app: FastAPI) -> None:
    """Add /docs, /docs/oauth2-redirect, /redoc and /docs/assets/* to an app built with docs_url=redoc_url=None."""
    redirect = "/docs/oauth2-redirect"

    @app.get(ASSETS_URL + "/redoc.standalone.js", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript; charset=utf-8")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page, asset = _page(app, request, "Swagger UI")
        return _with_csp(
            get_swagger_ui_html(
                **page,
                oauth2_redirect_url=request.scope.get("root_path", "") + redirect,
                swagger_js_url=asset("swagger-ui-bundle.js"),
                swagger_css_url=asset("swagger-ui.css"),
                swagger_favicon_url=asset("favicon.png"),
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _with_csp(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page, asset = _page(app, request, "ReDoc")
        return _with_csp(
            get_redoc_html(
                **page,
                redoc_js_url=asset("redoc.standalone.js"),
                redoc_favicon_url=asset("favicon.png"),
                with_google_fonts=False,
            )
        )
