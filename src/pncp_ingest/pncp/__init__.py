"""The PNCP HTTP client: both API families, their limits, retries and the API's traps.

The record models it decodes into live in :mod:`pncp_ingest.records`.
"""

from ._client import ClientStats, ConsultaPage, Detail, PncpClient
from ._config import ClientConfig, Family, FamilyLimits, RetryCallback, RetryNotice, RetryPolicy, client_config

__all__ = [
    "ClientConfig",
    "ClientStats",
    "ConsultaPage",
    "Detail",
    "Family",
    "FamilyLimits",
    "PncpClient",
    "RetryCallback",
    "RetryNotice",
    "RetryPolicy",
    "client_config",
]
