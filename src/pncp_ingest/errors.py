"""One exception hierarchy for pncp-ingest, each class carrying its exit code.

The CLI turns any :class:`PncpIngestError` into one line on stderr and ``exit_code``;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class PncpIngestError(Exception):
    """Base class: a failure the operator can act on. ``str(err)`` is the one line shown."""

    exit_code: int = 1
    # The partial RunSummary when a run had started (the pipeline attaches it), for --json.
    summary: Any = None


class UsageError(PncpIngestError):
    """Bad flags, dates or configuration values (exit 2)."""

    exit_code = 2


class UnknownModalidadeError(UsageError):
    """Modalidade codes PNCP does not serve were asked for (exit 2); ``served`` lists the ones it does."""

    def __init__(self, unknown: list[int], served: list[int]) -> None:
        super().__init__(
            f"modalidade {', '.join(map(str, unknown))} is not one PNCP serves: "
            f"use one of {', '.join(map(str, served))}"
        )
        self.unknown = unknown
        self.served = served


class ConfigError(UsageError):
    """A setting is wrong: a bad value, an unwritable destination, wrong credentials (exit 2)."""


class LeaseHeldError(PncpIngestError):
    """Another live run holds the (dataset, day) lease (exit 3)."""

    exit_code = 3


class UnreachableError(PncpIngestError):
    """The API or the storage cannot be reached at all (exit 4)."""

    exit_code = 4


class ApiUnreachableError(UnreachableError):
    """No request to the PNCP API succeeded: DNS, refused connections, or timeouts only."""


class StorageUnreachableError(UnreachableError):
    """The object store endpoint does not answer."""


class StorageError(PncpIngestError):
    """The object store answered with an error we cannot work around (exit 4)."""

    exit_code = 4


class ApiError(PncpIngestError):
    """A PNCP request failed for good: a non-retryable status, or retries exhausted.

    ``retryable`` tells whether another run may succeed (429/5xx/timeouts) or not (400/422).
    """

    def __init__(self, message: str, *, status: int | None = None, url: str = "", retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.retryable = retryable


class NotFoundError(ApiError):
    """404: the compra is not (or no longer) in PNCP. Recorded as gone, not retried."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message, status=404, url=url, retryable=False)


class StoppedAtOnce(PncpIngestError):
    """A second SIGINT/SIGTERM: the run stopped without winding down (exit 130 or 143).

    Committed work is kept; what was in flight since the last checkpoint is redone next run."""

    def __init__(self, signal_name: str, *, second: bool = True) -> None:
        which = f"a second {signal_name}" if second else signal_name
        super().__init__(f"stopped at once by {which}: committed work is kept")
        self.signal_name = signal_name
        self.exit_code = 143 if signal_name == "SIGTERM" else 130


class LeaseLostError(PncpIngestError):
    """Our lease was taken over (we stalled past its expiry); stop before writing more (exit 3)."""

    exit_code = 3


def collapse(exc: BaseException) -> BaseException:
    """The one error to report from a (possibly nested) exception group raised by a task group.

    Our own errors win over anything else, so the operator sees "the API is unreachable",
    not "unhandled errors in a TaskGroup".
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[BaseException]) -> None:
        for inner in group.exceptions:
            walk(inner) if isinstance(inner, BaseExceptionGroup) else leaves.append(inner)

    walk(exc)
    ours = [e for e in leaves if isinstance(e, PncpIngestError)]
    return (ours or leaves)[0]
