"""The bronze records, defined once for the client and the writer.

- :mod:`pncp_ingest.records.models` (re-exported here): the PNCP record models (pydantic), the
  raw record → bronze row conversion, and the detail kinds (``itens``, ``arquivos``);
- :mod:`pncp_ingest.records.schema`: the Arrow schemas derived from the models and the bronze
  datasets (folder, key, merge rule). It imports pyarrow, so it is not imported here.
"""

from .models import (
    DETAIL_KINDS,
    DETAIL_MODELS,
    Arquivo,
    Contratacao,
    DetailKind,
    Item,
    Record,
    bronze_row,
    bronze_rows_json,
)

__all__ = [
    "DETAIL_KINDS",
    "DETAIL_MODELS",
    "Arquivo",
    "Contratacao",
    "DetailKind",
    "Item",
    "Record",
    "bronze_row",
    "bronze_rows_json",
]
