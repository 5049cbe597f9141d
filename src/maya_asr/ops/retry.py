"""Retries with jittered exponential backoff for S3 calls.

We retry here rather than in botocore (whose own retries the client turns off) so that one
policy, in one place, covers every call: 5xx, throttling (``SlowDown``/503/429), timeouts and
refused or dropped connections while an endpoint restarts; each retry is logged; and tests can
shrink the delays without patching the client.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

# Error codes S3/R2 return for "try again later", besides any HTTP 5xx.
THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one S3 call."""

    max_attempts: int = 10  # attempts in all, the first included
    base_delay_s: float = 1.0  # first backoff ceiling; doubles each attempt
    max_delay_s: float = 60.0  # ceiling on one backoff

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("need 0 <= base_delay_s <= max_delay_s; fix the retry policy")


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to sleep after failed attempt ``attempt`` (1-based): "full jitter".

    Uniform in [0, min(max_delay, base * 2**(attempt-1))], which spreads retries of many clients
    (AWS architecture blog, "Exponential Backoff And Jitter").
    """
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    return rng.uniform(0.0, ceiling)


def is_retryable(exc: BaseException) -> bool:
    """True for transient failures: HTTP 5xx/429, throttling codes, timeouts, connection errors."""
    from botocore.exceptions import (
        ClientError,
        HTTPClientError,
        ReadTimeoutError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        return status >= 500 or status == 429 or err.get("Code") in THROTTLE_CODES
    return isinstance(
        exc,
        BotoConnectionError | HTTPClientError | ReadTimeoutError | ConnectionError | TimeoutError,
    )


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retryable: Callable[[BaseException], bool] = is_retryable,
) -> T:
    """``fn()``, retried on transient errors; the last error is re-raised when attempts run out."""
    rng = rng or random.Random()
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= policy.max_attempts or not retryable(exc):
                raise
            delay = backoff_delay(attempt, policy, rng)
            log.warning(
                "%s failed (attempt %d/%d: %s); retrying in %.2fs",
                what,
                attempt,
                policy.max_attempts,
                describe_error(exc),
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description: S3 error code and HTTP status, or the exception type."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"{err.get('Code', 'Unknown')} (HTTP {status})"
    return type(exc).__name__
