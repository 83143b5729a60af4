"""/docs (Swagger UI from local files when a package ships them) and the API's own 404 for unknown paths."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response
from starlette.staticfiles import StaticFiles

from ...errors import UserError

fallback_router = APIRouter(include_in_schema=False)


@fallback_router.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@fallback_router.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_endpoint(request: Request) -> None:
    # Without this, unknown API paths would fall through to the page and answer in Gradio's own shape.
    raise UserError("no_endpoint", path=f"{request.method} {request.url.path}")


def _local_swagger_ui() -> Path | None:
    """Swagger UI 5 files from the optional swagger-ui-bundle-v2 package (4.x cannot render OpenAPI 3.1)."""
    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(str(swagger_ui_path))
    major = path.name.removeprefix("swagger-ui-").split(".")[0]
    return path if major.isdigit() and int(major) >= 5 and (path / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI) -> None:
    """/docs from local files when a package ships them (works air-gapped), else from the CDN FastAPI uses."""
    assets = _local_swagger_ui()
    urls: dict[str, str] = {}
    if assets is not None:
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")
        urls = {
            "swagger_js_url": "/docs/assets/swagger-ui-bundle.js",
            "swagger_css_url": "/docs/assets/swagger-ui.css",
            "swagger_favicon_url": "/docs/assets/favicon-32x32.png",
        }

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="funasr-webui API", **urls)
