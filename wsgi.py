"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import logging

from factory import create_app

app = create_app()


def warm_catalog() -> None:
    """Load the published catalog before the first request, so no phone waits for the search
    index to be built (gunicorn.conf.py calls it in each worker; CLI commands do not). A
    database that is not migrated yet only postpones it to first use."""
    try:
        with app.app_context():
            app.extensions["yiwang"].catalog.snapshot()
    except Exception as exc:  # the first request retries and reports properly
        log = logging.getLogger(__name__)
        log.warning("catalog not loaded at start (%s); it loads on first use", type(exc).__name__)
    finally:
        from core.db import db

        db.remove()
