"""What the client needs to know, as typed values: where the API is, each family's limits, the
timeouts, the retry policy, and who to tell about a retry. :func:`client_config` builds it from
the application's settings; nothing else in ``pncp/`` reads them. No value here has a default:
each default lives once, in :class:`~pncp_ingest.config.Settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..config import Settings

Family = Literal["consulta", "detail"]
"""The two API families, limited separately: ``consulta`` (``/consulta/v1`` listings, throttles
hard) and ``detail`` (``/pncp/v1``: itens, arquivos, modalidades)."""


@dataclass(frozen=True)
class FamilyLimits:
    """One family's ceilings: requests in flight (the adaptive limit never goes above it) and
    requests per second (0 = no rate cap)."""

    concurrency: int
    rate: float


@dataclass(frozen=True)
class RetryPolicy:
    """How a request that may pass on another attempt is retried.

    Retryable: 429, 5xx, timeouts, connection errors, a truncated or invalid JSON body, and
    PNCP's spurious "over 365 days" 422 on a one-day window. Up to ``max_retries`` more
    attempts, each after a full-jitter exponential wait, uniform in
    ``[0, min(backoff_max, backoff_initial * 2 ** (attempt - 1))]``. A 429 does not wait on its
    own: it pauses the whole family for the server's Retry-After, or without one for a learned
    pause that starts at ``throttle_pause_initial`` and doubles while the block lasts, up to
    ``throttle_pause`` (the cap). Retries after other failures spend the family's
    ``retry_budget`` (0 = unlimited): see :mod:`pncp_ingest.pncp._limits`.
    """

    max_retries: int
    backoff_initial: float
    backoff_max: float
    throttle_pause: float
    throttle_pause_initial: float
    retry_budget: int

    @property
    def attempts(self) -> int:
        return self.max_retries + 1


@dataclass(frozen=True)
class RetryNotice:
    """A request failed and will be tried again: what, when, and why."""

    family: Family
    url: str
    failed_attempt: int
    attempts: int
    wait_s: float
    """Seconds until the next attempt may be sent (for a 429, the family's pause)."""
    reason: str

    def __str__(self) -> str:
        wait = f"{self.wait_s:.1f}" if self.wait_s >= 1 else f"{self.wait_s:.2f}"
        return (
            f"retrying {self.url} in {wait} s because {self.reason} "
            f"(attempt {self.failed_attempt} of {self.attempts} failed)"
        )


RetryCallback = Callable[[RetryNotice], None]
"""Called before each retry's wait, on the event loop: it must return quickly and not raise."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything :class:`~pncp_ingest.pncp.PncpClient` is configured with."""

    base_url: str
    """The API root, without a trailing slash: ``https://pncp.gov.br/api``."""
    detail: FamilyLimits
    consulta: FamilyLimits
    timeout: float
    """Seconds per request (connecting: at most 10 of them)."""
    retry: RetryPolicy
    adaptive: bool
    """Adapt each family's in-flight limit to evidence of load (windows of errors and latency, 429s);
    False = always the ceiling."""
    on_retry: RetryCallback | None = None


def client_config(settings: Settings, *, on_retry: RetryCallback | None = None) -> ClientConfig:
    """The client's configuration from the application's settings."""
    return ClientConfig(
        base_url=settings.base_url,
        detail=FamilyLimits(settings.concurrency, settings.rate),
        consulta=FamilyLimits(settings.consulta_concurrency, settings.consulta_rate),
        timeout=settings.timeout,
        retry=RetryPolicy(
            max_retries=settings.max_retries,
            backoff_initial=settings.backoff_initial,
            backoff_max=settings.backoff_max,
            throttle_pause=settings.throttle_pause,
            throttle_pause_initial=settings.throttle_pause_initial,
            retry_budget=settings.retry_budget,
        ),
        adaptive=settings.adaptive,
        on_retry=on_retry,
    )
