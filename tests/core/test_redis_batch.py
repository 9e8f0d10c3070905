"""core.redis.Batch: the hot paths' round trip to Redis answers as redis-py's pipeline does."""

from __future__ import annotations

import pytest
import redis

from core.redis import Batch, get_redis


def _stage(pipe):
    pipe.set("b:lock", "running", nx=True, ex=60)
    pipe.get("b:lock")
    pipe.set("b:lock", "again", nx=True, ex=60)  # taken: nothing set
    pipe.exists("b:lock", "b:missing")
    pipe.set("b:plain", "1")
    pipe.delete("b:plain", "b:missing")
    pipe.get("b:plain")


def test_a_batch_answers_what_a_pipeline_answers(app):
    r = get_redis()
    piped = r.pipeline(transaction=False)
    _stage(piped)
    expected = piped.execute()
    r.delete("b:lock")
    batch = Batch(r)
    _stage(batch)
    assert len(batch) == 7
    assert batch.execute() == expected == [True, b"running", None, 1, True, 1, None]
    assert 0 < r.ttl("b:lock") <= 60  # EX went with the SET
    assert Batch(r).execute() == []  # nothing staged: no round trip, nothing to answer


def test_a_command_error_is_raised_after_every_reply_was_read(app):
    r = get_redis()
    r.set("b:text", "x")
    batch = Batch(r).set("b:first", "1").get("b:text")
    batch._commands.append(("INCR", "b:text"))  # not an integer: the server refuses this one
    batch.set("b:after", "2")
    with pytest.raises(redis.ResponseError):
        batch.execute()
    # The commands around the refused one ran, and the pooled connection is not left with
    # unread replies: the next round trip on it reads its own answers.
    assert Batch(r).get("b:first").get("b:after").execute() == [b"1", b"2"]


def test_a_connection_the_server_dropped_does_not_fail_the_next_batch(app):
    r = get_redis()
    Batch(r).set("b:warm", "1").execute()  # a pooled connection now exists
    pooled = r.connection_pool.get_connection()
    name = f"batch-{id(pooled)}"
    pooled.send_command("CLIENT", "SETNAME", name)
    assert pooled.read_response() in (b"OK", "OK")
    r.connection_pool.release(pooled)
    r.client_kill_filter(_id=next(c["id"] for c in r.client_list() if c.get("name") == name))
    assert Batch(r).get("b:warm").execute() == [b"1"]
