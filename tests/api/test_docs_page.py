"""Swagger UI at /docs and ReDoc at /redoc work on a network without internet access:
every file the pages load comes from this server."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("path,marker", [("/docs", "swagger-ui"), ("/redoc", "redoc")])
def test_the_docs_pages_load_only_files_this_server_serves(client: TestClient, path: str, marker: str):
    page = client.get(path)
    assert page.status_code == 200 and marker in page.text
    loaded = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert "/openapi.json" in loaded
    assets = [url for url in loaded if url != "/openapi.json"]
    assert assets and all(url.startswith("/docs/assets/") for url in assets), loaded
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200 and len(response.content) > 100, url


def test_only_the_page_s_own_assets_are_served(client: TestClient):
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/docs/assets/..%2F__init__.py").status_code == 404
