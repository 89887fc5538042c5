"""The escalation queue page (`/ui`): a static HTML page, script and stylesheet, all
served from the package (no CDN: it works on a network without internet access).

The files hold no data, so they are open (tag `ui`, in auth.OPEN_TAGS); the page's script
reads the queue from the JSON API with the key the viewer enters, and a key with only the
`conversations` scope is enough. Assets come from a fixed table, never from a path taken
from the request, so no request can read another file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from service.api.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"
# File name -> media type: everything the page loads.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Own files only, no inline script or style: a quote from a customer message that somehow
# reached the page as markup could not run. `frame-ancestors 'none'`: no clickjacking.
UI_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["ui"], include_in_schema=False)


@cache
def read_asset(name: str) -> bytes:
    """An asset's bytes, read once (they change only with the installed package)."""
    return (STATIC_DIR / name).read_bytes()


def asset_response(name: str) -> Response:
    return Response(read_asset(name), media_type=ASSETS[name], headers=UI_HEADERS)


@router.get("/ui")
def queue_page() -> Response:
    """The live escalation queue."""
    return asset_response("index.html")


@router.get("/ui/")
def queue_page_slash() -> RedirectResponse:
    # One address for the page (its links to the assets are absolute, either would work).
    return RedirectResponse("/ui", status_code=308)


@router.get("/ui/{name}")
def ui_asset(name: str) -> Response:
    """The page's script and stylesheet."""
    if name not in ASSETS or name == "index.html":
        raise ApiError(404, "not_found", f"no UI asset {name!r}")
    return asset_response(name)
