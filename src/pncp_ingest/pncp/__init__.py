"""The PNCP HTTP client: both API families, their limits, retries and the API's traps.

The record models it decodes into live in :mod:`pncp_ingest.records`.
"""

from ._client import ClientStats, ConsultaPage, Detail, PncpClient
from ._config import ClientConfig, Family, FamilyLimits, RetryCallback, RetryNotice, RetryPolicy, client_config
from ._transport import HttpClient, create_http_client

__all__ = [
    "ClientConfig",
    "ClientStats",
    "ConsultaPage",
    "Detail",
    "Family",
    "FamilyLimits",
    "HttpClient",
    "PncpClient",
    "RetryCallback",
    "RetryNotice",
    "RetryPolicy",
    "client_config",
    "create_http_client",
]
