"""The service-catalog scenarios of `python -m bench.run`: the searches citizens type, a
preflight that fails fast when the catalog endpoints do not answer as expected, and the
unmeasured warm-up that makes every worker build its catalog read model first."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.parse
import urllib.request

from bench.infra import BenchError, Gunicorn
from bench.load import run_wrk

# What citizens type (their words, not the catalog's: 生孩子, 开店 rely on the synonym list).
SEARCH_QUERIES = (
    "身份证", "生孩子", "公积金提取", "开店", "结婚", "社保卡",
    "医保", "居住证", "户口", "营业执照", "低保", "上学",
)  # fmt: skip


def search_paths() -> list[str]:
    """The search scenario's request paths, URL-encoded."""
    return [f"/v1/services?q={urllib.parse.quote(q)}" for q in SEARCH_QUERIES]


def _get(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
    """Status and ETag of one GET (urllib raises for a 304 like for any status outside 2xx)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
            return resp.status, resp.headers.get("ETag")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("ETag")
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"GET {url} failed: {exc}") from exc


def catalog_preflight(server: Gunicorn, code: str) -> str:
    """Learn the detail's ETag; check that revalidating it answers 304 and every search 200."""
    headers = {"Accept": "application/json"}  # as the Lua scripts send: no gzip
    url = f"{server.base_url}/v1/services/{code}"
    status, etag = _get(url, headers)
    if status != 200 or not etag:
        raise BenchError(f"GET /v1/services/{code} answered {status} with ETag {etag!r}, not 200 with one")
    status, _ = _get(url, headers | {"If-None-Match": etag})
    if status != 304:
        raise BenchError(f"GET /v1/services/{code} with If-None-Match: {etag} answered {status}, not 304")
    for path in search_paths():
        status, _ = _get(server.base_url + path, headers)
        if status != 200:
            raise BenchError(f"GET {urllib.parse.unquote(path)} answered {status}, not 200")
    return etag


def warm_catalog(args: argparse.Namespace, wrk: str, server: Gunicorn, code: str, threads: int) -> None:
    """Unmeasured load on the detail so every worker has loaded the catalog before its scenarios.

    A worker that has not built its read model (entries, search index) yet does so on its
    first catalog request; a scenario's own short warm-up might not cover that in every worker.
    """
    offset = server.access_offset()
    seconds = max(5, args.warmup)
    run_wrk(wrk, f"{server.base_url}/v1/services/{code}", "get.lua", [], duration=seconds,
            connections=args.connections, threads=threads)  # fmt: skip
    per_worker = server.requests_per_worker(offset)
    print(f"  catalog warm-up ({seconds} s): requests per worker {per_worker}", flush=True)
