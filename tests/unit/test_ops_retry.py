"""Backoff bounds, what counts as transient, and the retry loop (with a recorded sleep)."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from maya_asr.ops.retry import RetryPolicy, backoff_delay, call_with_retry, is_retryable


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling():
    policy = RetryPolicy(max_attempts=10, base_delay_s=0.5, max_delay_s=4.0)
    rng = random.Random(0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = [backoff_delay(attempt, policy, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # spread over the whole range, not a fixed step


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("BadGateway", 502), True),
        (client_error("TooManyRequests", 429), True),
        (client_error("RequestTimeout", 400), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchKey", 404), False),
        (client_error("NoSuchUpload", 404), False),
        (client_error("InvalidPart", 400), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (ConnectionResetError(), True),
        (ValueError("bug"), False),
    ],
)
def test_transient_errors_are_retried_and_others_are_not(exc, retry):
    assert is_retryable(exc) is retry


def test_retries_until_success_then_returns():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise client_error("SlowDown", 503)
        return "ok"

    policy = RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=8.0)
    assert call_with_retry(flaky, policy, "op", rng=random.Random(1), sleep=sleeps.append) == "ok"
    assert len(calls) == 4 and len(sleeps) == 3
    assert all(0 <= s <= c for s, c in zip(sleeps, [1.0, 2.0, 4.0], strict=True))


def test_gives_up_after_max_attempts_and_reraises_the_last_error():
    sleeps = []
    with pytest.raises(ClientError, match="SlowDown"):
        call_with_retry(
            lambda: (_ for _ in ()).throw(client_error("SlowDown", 503)),
            RetryPolicy(3, 0.1, 0.1),
            "op",
            sleep=sleeps.append,
        )
    assert len(sleeps) == 2


def test_permanent_error_is_not_retried():
    sleeps = []
    with pytest.raises(ClientError, match="AccessDenied"):
        call_with_retry(
            lambda: (_ for _ in ()).throw(client_error("AccessDenied", 403)),
            RetryPolicy(5, 0.1, 0.1),
            "op",
            sleep=sleeps.append,
        )
    assert sleeps == []


def test_bad_policies_are_rejected():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay_s"):
        RetryPolicy(base_delay_s=5, max_delay_s=1)
