"""The API's interactive docs, Swagger UI at `/docs` and ReDoc at `/redoc`, with their
scripts, stylesheet and icon served from the fastapi-offline package. FastAPI's own pages
load theirs from a CDN, which a server on a network without internet access cannot reach,
so both are off (`create_app`) and these replace them.

Like the queue page (`ui_routes`), the files hold no data and are open (tag `docs`, in
auth.OPEN_TAGS); assets come from a fixed table, never from a path taken from the request."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from service.api.errors import ApiError

DOCS_PATH, REDOC_PATH = "/docs", "/redoc"
ASSETS_PATH = f"{DOCS_PATH}/assets"
# File name -> media type: everything the two pages load (Swagger UI 5, ReDoc 2).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
FAVICON = f"{ASSETS_PATH}/favicon.png"
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400"}

router = APIRouter(tags=["docs"], include_in_schema=False)


@cache
def read_asset(name: str) -> bytes:
    """An asset's bytes, read once (they change only with the installed package)."""
    return (files("fastapi_offline") / "static" / name).read_bytes()


def _spec(request: Request) -> dict[str, str]:
    """What both pages are given: this server's spec and the page title."""
    return {"openapi_url": request.app.openapi_url, "title": f"{request.app.title} API"}


@router.get(DOCS_PATH)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over this server's OpenAPI spec."""
    return get_swagger_ui_html(
        **_spec(request),
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=FAVICON,
    )


@router.get(REDOC_PATH)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over this server's OpenAPI spec (without Google's fonts: no network)."""
    return get_redoc_html(
        **_spec(request),
        redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )


@router.get(f"{ASSETS_PATH}/{{name}}")
def docs_asset(name: str) -> Response:
    """The pages' scripts, stylesheet and icon."""
    if name not in ASSETS:
        raise ApiError(404, "not_found", f"no docs asset {name!r}")
    return Response(read_asset(name), media_type=ASSETS[name], headers=ASSET_HEADERS)
