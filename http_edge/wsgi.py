"""WSGI entry point for gunicorn: `gunicorn -c http_edge/gunicorn_conf.py http_edge.wsgi:app`."""

from http_edge.app import create_app

app = create_app()
