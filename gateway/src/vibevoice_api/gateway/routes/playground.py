"""``GET /playground``: a small browser page that speaks, transcribes and transcribes live through the public API.

The page and its assets are files shipped with the package (``static/playground``), served from a fixed
list of names with a strict Content-Security-Policy: scripts and styles only from this origin, no inline
code, network only to this origin (HTTP and WebSocket), audio from blob URLs the page makes itself.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from vibevoice_api.shared.errors import NotFoundError

router = APIRouter(include_in_schema=False)

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "media-src 'self' blob:",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "permissions-policy": "microphone=(self), camera=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-cache",
}
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "pcm-worklet.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


@cache
def _read(name: str) -> bytes:
    return files("vibevoice_api.gateway").joinpath("static", "playground", name).read_bytes()


@router.get("/playground")
async def playground(request: Request) -> Response:
    """The page; it shows an API-key field when this gateway requires keys."""
    auth = "true" if request.app.state.settings.api_keys else "false"
    page = _read("index.html").replace(b"{{auth}}", auth.encode())
    return Response(page, media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/playground/")
async def playground_slash() -> Response:
    return RedirectResponse("/playground", status_code=308)


@router.get("/playground/{name}")
async def playground_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"No playground file named {name!r}.", code="not_found")
    return Response(_read(name), media_type=media_type, headers=HEADERS)
