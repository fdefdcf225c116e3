"""WebUI: the Web UI's files, served by the JobManager's REST server (no build step).

The UI is plain HTML, CSS and JavaScript modules checked into the package folder
``pyflow/rest/webui/``; the browser renders it from the REST API's JSON (hash routing, relative
URLs, so it also works behind a proxy that adds a path prefix, like YARN's web proxy).

``WebUI().routes()`` serves ``GET /`` (the page) and ``GET /web/:filename`` (its assets). The files
are read once, when the handler is created: only those names are ever served, so no request can
reach another file (``..``, encoded slashes and absolute paths are simply unknown names).

Caching: the page is ``no-cache`` (always revalidated) and names each asset with ``?v=<hash of
its content>``, also for the modules that import each other (through an import map), so an asset
asked for with its current hash may be cached forever (``immutable``) and an upgraded pyflow is
never shown with stale scripts. The page forbids inline scripts other than its import map
(Content-Security-Policy), a second line of defence behind the UI escaping every value it shows.

>>> ui = WebUI()
>>> sorted(route.path for route in ui.routes())
['/', '/web/:filename']
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pyflow.rest.errors import NotFound
from pyflow.rest.router import RawResponse, Request, Route

#: the folder of the UI's files (package data)
WEBUI_DIR = Path(__file__).with_name("webui")
#: URL prefix of the assets; REST paths never start with it
ASSET_PREFIX = "web/"
#: the files served, by suffix; anything else in the folder is not served
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
INDEX = "index.html"
#: in index.html, replaced by the import map that pins every module to its current hash
IMPORT_MAP_MARKER = "<!-- import-map -->"
#: in index.html, ``web/NAME?v=`` + this marker is replaced by the asset's hash
HASH_MARKER = "{hash}"
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    content_type: str
    version: str


class WebUI:
    """The Web UI's routes over the files of ``directory`` (default: the package's ``webui``)."""

    def __init__(self, directory: Path = WEBUI_DIR):
        self.assets: dict[str, _Asset] = {}
        for path in sorted(directory.iterdir()):
            content_type = CONTENT_TYPES.get(path.suffix)
            if path.is_file() and content_type is not None and path.name != INDEX:
                body = path.read_bytes()
                self.assets[path.name] = _Asset(body, content_type, hashlib.sha256(body).hexdigest()[:16])
        self.index = self._page((directory / INDEX).read_text(encoding="utf-8"))

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/", self.serve_index, "The Web UI"),
            Route("GET", "/web/:filename", self.serve_asset, "A file of the Web UI (script, style, icon)"),
        ]

    def _page(self, html: str) -> RawResponse:
        modules = {f"./{ASSET_PREFIX}{name}": f"./{ASSET_PREFIX}{name}?v={asset.version}"
                   for name, asset in self.assets.items() if name.endswith(".js")}
        import_map = json.dumps({"imports": modules}, indent=1, sort_keys=True)
        for name, asset in self.assets.items():
            html = html.replace(f"{ASSET_PREFIX}{name}?v={HASH_MARKER}", f"{ASSET_PREFIX}{name}?v={asset.version}")
        if HASH_MARKER in html:
            raise ValueError(f"{INDEX} names an asset with ?v={HASH_MARKER} that is not in {WEBUI_DIR}")
        digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
        html = html.replace(IMPORT_MAP_MARKER, f'<script type="importmap">{import_map}</script>')
        policy = ("default-src 'self'; "
                  f"script-src 'self' 'sha256-{digest}'; "
                  "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                  "object-src 'none'; base-uri 'self'; frame-ancestors 'self'")
        return RawResponse(html.encode(), CONTENT_TYPES[".html"],
                           {"Cache-Control": NO_CACHE, "Content-Security-Policy": policy,
                            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    def serve_index(self, request: Request) -> RawResponse:
        return self.index

    def serve_asset(self, request: Request) -> RawResponse:
        name = request.params["filename"]
        asset = self.assets.get(name)
        if asset is None:
            raise NotFound(f"The Web UI has no file '{name}'; it serves {', '.join(sorted(self.assets))} "
                           "under /web/, and the page itself at /")
        cache = IMMUTABLE if request.query_value("v") == asset.version else NO_CACHE
        return RawResponse(asset.body, asset.content_type,
                           {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})
