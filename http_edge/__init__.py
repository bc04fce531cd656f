"""HTTP edge: a small Flask app that turns the REST API (SPEC §2) into Nameko RPC."""

from http_edge.app import create_app

__all__ = ["create_app"]
