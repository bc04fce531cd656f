"""/openapi.json and Swagger UI at /docs, served from the pinned flask-swagger-ui dist (no CDN)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from werkzeug.exceptions import NotFound

bp = Blueprint("docs", __name__)

SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
SWAGGER_ASSETS = {
    "swagger-ui.css",
    "index.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
}

SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>Users and orders API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="stylesheet" href="/docs/assets/index.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = function () {
      window.ui = SwaggerUIBundle({
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout"
      });
    };
  </script>
</body>
</html>
"""


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(current_app.extensions["openapi"])


@bp.get("/docs")
def swagger_ui() -> Response:
    return Response(SWAGGER_PAGE, mimetype="text/html")


@bp.get("/docs/assets/<name>")
def swagger_asset(name: str) -> Response:
    # Only the files the page uses: the dist folder also holds an upstream index page.
    if name not in SWAGGER_ASSETS:
        raise NotFound()
    return send_from_directory(SWAGGER_DIST, name, max_age=86400)
