"""The baseline: a bare Flask app with one JSON endpoint and no extensions.

Served by the same gunicorn.conf.py as yiwang, so the ratio yiwang rps / bare rps isolates
what yiwang's own code costs on this machine.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/json")
def bare_json() -> dict:
    """A small JSON document, about the size of /v1/health's."""
    return {"status": "ok", "service": "bare"}
