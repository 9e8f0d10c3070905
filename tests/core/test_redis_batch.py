"""core.redis.Batch: the hot paths' round trip to Redis answers as redis-py's pipeline does."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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


def _own_client(**kwargs):
    """A client with a pool of its own, on the tests' Redis (`kwargs`: connection settings)."""
    r = get_redis()
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=r.connection_pool.connection_class, **(r.connection_pool.connection_kwargs | kwargs)
    ))  # fmt: skip


def test_a_command_error_is_raised_after_every_reply_was_read(app):
    r = _own_client()
    r.set("b:text", "x")
    first = r.client_id()  # the pooled connection's id at the server
    batch = Batch(r).set("b:first", "1").get("b:text")
    batch._commands.append(("INCR", "b:text"))  # not an integer: the server refuses this one
    batch.set("b:after", "2")
    with pytest.raises(redis.ResponseError):
        batch.execute()
    # Every reply was read: the pool hands the same connection out again (one with replies
    # still waiting would be dropped and replaced, under another id), and it answers its own.
    assert r.client_id() == first
    assert Batch(r).get("b:first").get("b:after").execute() == [b"1", b"2"]


def _fail_first_send(monkeypatch) -> list[int]:
    sent: list[int] = []
    real = redis.Connection.send_packed_command

    def flaky(self, command, check_health=True):
        packed = b"".join(command) if isinstance(command, list) else bytes(command)
        if b"b:" not in packed:  # a new connection's handshake
            return real(self, command, check_health)
        sent.append(1)
        if len(sent) == 1:
            raise redis.ConnectionError("connection reset by peer")
        return real(self, command, check_health)

    monkeypatch.setattr(redis.Connection, "send_packed_command", flaky)
    monkeypatch.setattr(redis.UnixDomainSocketConnection, "send_packed_command", flaky, raising=False)
    return sent


def test_a_connection_the_server_dropped_does_not_fail_the_next_batch(app):
    r = _own_client()
    Batch(r).set("b:warm", "1").execute()
    assert get_redis().client_kill_filter(_id=r.client_id(), skipme=False) == 1
    assert Batch(r).get("b:warm").execute() == [b"1"]  # the pool noticed and reconnected


def test_a_connection_lost_mid_batch_fails_it_or_sends_it_again_as_the_client_is_configured(app, monkeypatch):
    # As configured here (core.redis: no retries), the caller sees the lost connection, as it
    # did with redis-py's pipeline, and the next batch goes out on a fresh connection.
    plain = _own_client()
    sent = _fail_first_send(monkeypatch)
    with pytest.raises(redis.ConnectionError):
        Batch(plain).set("b:lost", "1").execute()
    assert Batch(plain).set("b:next", "2").get("b:next").execute() == [True, b"2"]
    assert len(sent) == 2
    # A client configured to retry sends the whole batch again, with the pipeline's Retry.
    retrying = _own_client(retry=Retry(NoBackoff(), 1))
    sent.clear()
    assert Batch(retrying).set("b:again", "3").get("b:again").execute() == [True, b"3"]
    assert len(sent) == 2
