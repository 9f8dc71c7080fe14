"""The PNCP client and record models."""

from ._client import ClientStats, ConsultaPage, PncpClient, RetryNotice
from ._records import Arquivo, Contratacao, Item, Record, bronze_row

__all__ = [
    "Arquivo",
    "ClientStats",
    "ConsultaPage",
    "Contratacao",
    "Item",
    "PncpClient",
    "Record",
    "RetryNotice",
    "bronze_row",
]
