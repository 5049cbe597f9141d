"""R2 / S3 settings from the environment or a private ``.env`` file, with secrets kept secret.

Variables (the environment wins over the file):

    R2_ACCOUNT_ID         Cloudflare account id -> https://<id>.r2.cloudflarestorage.com
    R2_ENDPOINT           any S3 endpoint URL (wins over R2_ACCOUNT_ID; tests use a local server)
    R2_ACCESS_KEY_ID      access key id
    R2_SECRET_ACCESS_KEY  secret access key
    R2_BUCKET             bucket name
    R2_PREFIX             optional key prefix, e.g. "maya-asr/stage1"
    R2_REGION             optional signing region (R2 wants "auto", the default)

Credential values never appear in a ``repr``, a log line or an exception message: they are
wrapped in :class:`Secret`, and :func:`redact` / :class:`RedactingFilter` scrub any text that
might carry them (botocore error bodies, tracebacks) before it is shown.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_KEYS = (
    "R2_ACCOUNT_ID",
    "R2_ENDPOINT",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_BUCKET",
    "R2_PREFIX",
    "R2_REGION",
)
_REDACTED = "***"


class CredentialsError(ValueError):
    """Settings are missing or unsafe; the message says what to change and never holds a secret."""


class Secret:
    """A string that refuses to be printed: ``str``/``repr``/f-strings all give ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that needs it (the boto3 client)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_REDACTED})"

    def __str__(self) -> str:
        return _REDACTED

    def __format__(self, spec: str) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        # Pickling would write the secret to disk or a pipe; nothing here needs it.
        raise TypeError("Secret values are not picklable")


@dataclass(frozen=True)
class R2Settings:
    """Where and as whom to talk S3; validated by :func:`load_settings`."""

    endpoint_url: str  # https://<account>.r2.cloudflarestorage.com or any S3 endpoint
    bucket: str  # bucket holding the checkpoints
    access_key_id: Secret  # never printed
    secret_access_key: Secret  # never printed
    prefix: str = ""  # key prefix without leading/trailing "/" ("" = bucket root)
    region: str = "auto"  # signing region; R2 ignores it but boto3 needs one

    def key(self, *parts: str) -> str:
        """Object key under the prefix: ``key("run1", "a.ckpt")`` -> ``<prefix>/run1/a.ckpt``."""
        names = [p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/")]
        return "/".join(names)

    def secret_values(self) -> tuple[str, ...]:
        """The values :func:`redact` must scrub."""
        return tuple(v for v in (self.access_key_id.reveal(), self.secret_access_key.reveal()) if v)

    def describe(self) -> str:
        """A printable one-liner: endpoint, bucket, prefix; credentials only as 'set'."""
        prefix = self.prefix or "(bucket root)"
        return f"endpoint={self.endpoint_url} bucket={self.bucket} prefix={prefix} credentials=set"


def read_env_file(path: str | os.PathLike) -> dict[str, str]:
    """Parse a ``.env`` file (``KEY=VALUE``, ``export KEY=VALUE``, ``#`` comments, quotes).

    Refuses a file that group or others may read, since it holds the secret key.
    """
    path = Path(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path} is readable by group/others (mode {stat.S_IMODE(mode):o}); it holds the R2 "
            f"secret key: run `chmod 600 {path}`"
        )
    values: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            # The line may hold a secret: name the line, never echo it.
            raise CredentialsError(f"{path}:{lineno} is not KEY=VALUE; fix or delete that line")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def load_settings(
    env: Mapping[str, str] | None = None, env_file: str | os.PathLike | None = ".env"
) -> R2Settings:
    """Settings from ``env`` (default ``os.environ``) over ``env_file`` (skipped when absent)."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in read_env_file(env_file).items() if k in ENV_KEYS})
    env = os.environ if env is None else env
    merged.update({k: env[k] for k in ENV_KEYS if env.get(k)})

    endpoint = merged.get("R2_ENDPOINT", "").rstrip("/")
    if not endpoint and merged.get("R2_ACCOUNT_ID"):
        endpoint = f"https://{merged['R2_ACCOUNT_ID']}.r2.cloudflarestorage.com"
    missing = [
        name
        for name, value in (
            ("R2_ACCOUNT_ID or R2_ENDPOINT", endpoint),
            ("R2_ACCESS_KEY_ID", merged.get("R2_ACCESS_KEY_ID")),
            ("R2_SECRET_ACCESS_KEY", merged.get("R2_SECRET_ACCESS_KEY")),
            ("R2_BUCKET", merged.get("R2_BUCKET")),
        )
        if not value
    ]
    if missing:
        where = f"the environment or {env_file}" if env_file else "the environment"
        raise CredentialsError(
            f"R2 settings missing: {', '.join(missing)}; set them in {where} (chmod 600 .env)"
        )
    if not endpoint.startswith(("http://", "https://")):
        raise CredentialsError(f"R2_ENDPOINT must start with http:// or https://, got {endpoint!r}")
    return R2Settings(
        endpoint_url=endpoint,
        bucket=merged["R2_BUCKET"],
        access_key_id=Secret(merged["R2_ACCESS_KEY_ID"]),
        secret_access_key=Secret(merged["R2_SECRET_ACCESS_KEY"]),
        prefix=merged.get("R2_PREFIX", "").strip("/"),
        region=merged.get("R2_REGION", "auto"),
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret value replaced by ``***``."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, _REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secret values from messages, arguments and tracebacks."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = redact(record.getMessage(), self._secrets)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = redact(text, self._secrets)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        return True


def install_redaction(settings: R2Settings, logger: logging.Logger | None = None) -> None:
    """Attach a :class:`RedactingFilter` to every handler of ``logger`` (default: root)."""
    logger = logger or logging.getLogger()
    filt = RedactingFilter(settings.secret_values())
    for handler in logger.handlers:
        handler.addFilter(filt)
