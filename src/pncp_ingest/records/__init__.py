"""The bronze records, defined once for the client and the writer.

- :mod:`pncp_ingest.records.values` (re-exported here): the column types and what fits each;
- :mod:`pncp_ingest.records.models`: the PNCP record models (pydantic): contratações, contratos,
  atas, and the detail kinds (``itens``, ``arquivos``, ``resultados``);
- :mod:`pncp_ingest.records.rows`: a response body or raw record → bronze rows, numbers exact,
  anything that does not fit its column kept in ``_extra``;
- :mod:`pncp_ingest.records.schema`: the Arrow schemas derived from the models and the bronze
  datasets (folder, key, merge rule). It imports pyarrow, so it is not imported here.
"""

from .models import (
    DETAIL_KINDS,
    DETAIL_MODELS,
    Arquivo,
    Ata,
    Contratacao,
    Contrato,
    DetailKind,
    Item,
    Record,
    Resultado,
)
from .rows import JsonNumber, bronze_row, bronze_rows_json, loads
from .values import PRECISION, SCALE

__all__ = [
    "DETAIL_KINDS",
    "DETAIL_MODELS",
    "PRECISION",
    "SCALE",
    "Arquivo",
    "Ata",
    "Contratacao",
    "Contrato",
    "DetailKind",
    "Item",
    "JsonNumber",
    "Record",
    "Resultado",
    "bronze_row",
    "bronze_rows_json",
    "loads",
]
