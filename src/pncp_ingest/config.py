"""All configuration in one place: flag > environment > ``.env`` file > default.

The CLI passes the flags it was given as keyword overrides to :func:`load_settings`;
pydantic-settings applies the environment and the ``.env`` file beneath them.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

DEFAULT_BASE_URL = "https://pncp.gov.br/api"
USER_AGENT = "pncp-ingest (+https://pypi.org/project/pncp-ingest/)"


class Settings(BaseSettings):
    """Every setting of a run. Field ``x`` reads env ``PNCP_X``; see ``.env.example``."""

    model_config = SettingsConfigDict(env_prefix="PNCP_", extra="ignore", validate_default=True)

    base_url: str = DEFAULT_BASE_URL
    dest: str = "./data/bronze"
    s3_endpoint_url: str | None = None

    # Each API family's ceiling of requests in flight, and of requests per second (0 = none): the
    # detail API (/pncp/v1: itens, arquivos, modalidades) and the consulta API (/consulta/v1
    # listings). PNCP blocks a client with more than about 6 in flight (HTML 429s for ~25 s), so
    # neither starts above that; the rates are a safety cap that does not bind at PNCP's
    # latencies (~1 s a call: 6 in flight make ~6 requests/s).
    concurrency: int = Field(6, ge=1, le=512)
    rate: float = Field(20.0, ge=0)
    consulta_concurrency: int = Field(6, ge=1, le=512)
    consulta_rate: float = Field(20.0, ge=0)

    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, le=100)
    backoff_initial: float = Field(1.0, ge=0)
    backoff_max: float = Field(60.0, ge=0)
    # The consulta API's 429 carries no Retry-After and its block lasts ~25 s: without Retry-After
    # the first pause is throttle_pause_initial, doubling while the block lasts, up to throttle_pause.
    throttle_pause: float = Field(30.0, ge=0)
    throttle_pause_initial: float = Field(1.0, ge=0)
    # Retry tokens per API family (AWS-style retry quota): a retry costs 5 (10 after a timeout or a
    # dropped connection), a good answer earns 1 back; spent = failing requests are not retried. 0 = off.
    retry_budget: int = Field(500, ge=0)

    # Adaptive in-flight limit per API family (on evidence of load: errors and latency over windows
    # of answers, and 429s; under the ceilings above); false = always the ceiling.
    adaptive: bool = True

    # Resultados: an unsettled contratação (an item still in progress) is polled again after 1, 2,
    # 4 … days, at most this many days apart, until this many days after its publication.
    resultados_poll_max_days: float = Field(7.0, gt=0)
    resultados_max_age_days: int = Field(365, ge=0)
    # The instant the resultados schedule takes as now (ISO 8601; UTC when no offset). For tests
    # and benchmarks that replay weeks in minutes; unset, the real clock.
    now: datetime | None = None

    checkpoint_every: int = Field(50, ge=1)
    publish_every: float = Field(300.0, gt=0)
    lease_ttl: float = Field(600.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @property
    def s3_endpoint(self) -> str | None:
        """Our own setting first, then botocore's standard variables."""
        return (
            self.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        )


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build Settings; ``overrides`` are the CLI flags the user gave (None means not given).

    Reads the environment and ``env_file``; writes nothing (see :func:`aws_settings_from` for the
    env file's ``AWS_*`` lines)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if env_file is not None and str(env_file) != ".env" and not Path(env_file).is_file():
        raise ConfigError(f"env file {env_file} does not exist: check the --env-file path")
    try:
        return Settings(_env_file=env_file, **given)  # type: ignore[call-arg]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "setting"
        source = f"--{name.replace('_', '-')}" if name in given else f"PNCP_{name.upper()}"
        value = err.get("input")
        raise ConfigError(
            f"{source}={value!r} is invalid: {err['msg']}; fix it in the flags, the environment or .env"
        ) from None


def unknown_settings(env_file: str | Path | None = ".env") -> list[str]:
    """One warning per ``PNCP_*`` name in the environment or the env file that is not a setting.

    pydantic-settings ignores such names, so a misspelling (``PNCP_CONCURENCY``) would silently
    leave the default in force; the warning names the closest real setting."""
    known = [f"PNCP_{name.upper()}" for name in Settings.model_fields]
    found: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        found.update(
            {name.upper(): str(env_file) for name in dotenv_values(env_file) if name.upper().startswith("PNCP_")}
        )
    found.update({name.upper(): "the environment" for name in os.environ if name.upper().startswith("PNCP_")})
    warnings = []
    for name, where in sorted(found.items()):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see .env.example for the settings"
        warnings.append(f"{name} (in {where}) is not a pncp-ingest setting and is ignored: {hint}")
    return warnings


@contextmanager
def aws_settings_from(env_file: str | Path | None) -> Iterator[dict[str, str]]:
    """While inside, the ``AWS_*`` lines of the env file reach botocore's standard chain, beneath
    the environment; leaving, the environment is as it was. Yields the names and values it set.

    The credentials are not our settings (botocore reads them from the environment), but users keep
    them in the same ``.env``; a variable already set in the environment wins, as for every other
    setting. Scoped to one run so that a host process (a test, an Airflow worker) keeps its own
    environment: :func:`load_settings` itself never writes to ``os.environ``."""
    added: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        added = {
            name: value
            for name, value in dotenv_values(env_file).items()
            if name.startswith("AWS_") and value is not None and name not in os.environ
        }
    os.environ.update(added)
    try:
        yield added
    finally:
        for name in added:
            os.environ.pop(name, None)
