"""pncp-ingest: land PNCP contratações, itens and arquivos as a Parquet bronze layer, exactly once.

The CLI (``pncp-ingest``) is a thin layer over this library::

    import anyio
    from datetime import date
    from pncp_ingest import load_settings, run_contratacoes

    summary = anyio.run(run_contratacoes, load_settings(dest="./bronze"), [date(2025, 10, 22)])

Importing it changes nothing in the host process. The command line picks Arrow's system
allocator (``ARROW_DEFAULT_MEMORY_POOL=system``: Arrow's default keeps freed pages, so peak
memory grows with the day); a program using the library may set the same before it imports pyarrow.
"""

__version__ = "0.1.0"

from .config import Settings, load_settings
from .errors import (
    ApiError,
    ApiUnreachableError,
    ConfigError,
    LeaseHeldError,
    PncpIngestError,
    StorageError,
    StorageUnreachableError,
    UnreachableError,
    UsageError,
)


def __getattr__(name: str) -> object:
    # The engine pulls in aioboto3 and pyarrow; importing it lazily keeps `import pncp_ingest.testing`
    # (the simulator) and `pncp-ingest --help` quick.
    if name in ("RunSummary", "run_contratacoes", "run_details"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'pncp_ingest' has no attribute {name!r}")


__all__ = [
    "ApiError",
    "ApiUnreachableError",
    "ConfigError",
    "LeaseHeldError",
    "PncpIngestError",
    "RunSummary",
    "Settings",
    "StorageError",
    "StorageUnreachableError",
    "UnreachableError",
    "UsageError",
    "__version__",
    "load_settings",
    "run_contratacoes",
    "run_details",
]
