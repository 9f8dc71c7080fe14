"""The contratos and atas endpoints of the consulta API, and their ``/_sim`` truth and amend routes.

Same rules as the contratações listings (reference §2.2–2.4), with the page sizes of these
endpoints (10–500) and no modalidade: 400 for a missing parameter or a page size outside 10–500,
422 for a bad date, a reversed window or one over 365 days, 204 with an empty body when nothing is
listed, the ``PaginaRetorno`` envelope otherwise. They are consulta-family routes, so the consulta
faults hit them.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from aiohttp import web

from ._app import (
    MSG_WINDOW,
    SimState,
    _ctl,
    _ctl_date,
    _ctl_error,
    _flag,
    _unprocessable,
    listing_params,
)
from ._contratos import Dataset, SimulatedOutcomes, _Rec
from ._data import as_date, dumps

__all__ = ["add_outcome_routes"]

MAX_PAGE = 500


class _Outcomes:
    def __init__(self, st: SimState, outcomes: SimulatedOutcomes) -> None:
        self.st, self.outcomes = st, outcomes

    def listing(self, kind: str) -> Any:
        def handle(request: web.Request, spurious: bool) -> tuple[int, bytes]:
            d0, d1, pagina, size = self._params(request, spurious)
            cnpj = request.query.get("cnpjOrgao") if kind.startswith("contratos") else None
            st = self.st

            def make() -> bytes:
                frags = self._window(kind, d0, d1, cnpj, pagina, size)
                if frags is None:
                    return b""
                chunk, total = frags
                pages = math.ceil(total / size)
                tail = {
                    "totalRegistros": total,
                    "totalPaginas": pages,
                    "numeroPagina": pagina,
                    "paginasRestantes": pages - pagina,
                    "empty": False,
                }
                return b'{"data":[' + b",".join(chunk) + b"]," + dumps(tail)[1:]

            body = st._cached(("consulta", kind, d0, d1, cnpj, pagina, size), make)
            return (200, body) if body else (204, b"")

        return handle

    def _window(
        self, kind: str, d0: dt.date, d1: dt.date, cnpj: str | None, pagina: int, size: int
    ) -> tuple[list[bytes], int] | None:
        """The page's fragments and the listing's total, or None when the page is past the end."""
        o = self.outcomes
        lo = (pagina - 1) * size
        if kind == "atas":
            keys = o.vigencia_window(d0, d1)
            if lo >= len(keys):
                return None
            return [o.ata(k).frag for k in keys[lo : lo + size]], len(keys)
        win_key = (kind, d0, d1, cnpj)
        recs: list[_Rec] | None = self.st._windows.get(win_key)
        if recs is None:
            dataset: Dataset = "contratos" if kind.startswith("contratos") else "atas"
            listed = o.atualizacao_window if kind.endswith("_atualizacao") else o.window
            recs = listed(dataset, d0, d1)
            if cnpj is not None:
                recs = [c for c in recs if c.id.startswith(cnpj + "-")]
            if len(self.st._windows) > 5000:
                self.st._windows.clear()
            self.st._windows[win_key] = recs
        if lo >= len(recs):
            return None
        return [c.frag for c in recs[lo : lo + size]], len(recs)

    def _params(self, request: web.Request, spurious: bool) -> tuple[dt.date, dt.date, int, int]:
        path = request.path
        d0, d1, pagina, size, _ = listing_params(request.query, path, MAX_PAGE)
        if spurious:
            self.st.fault_counts["spurious_422"] += 1
            raise _unprocessable(MSG_WINDOW, path)
        return d0, d1, pagina, size

    # ------------------------------------------------------------------ control routes

    def truth(self, dataset: Dataset, atualizacao: bool) -> Any:
        async def handle(request: web.Request) -> web.Response:
            d = _ctl_date(request)
            versions = _flag(request, "versions")
            o = self.outcomes
            make = o.truth_atualizacao_bytes if atualizacao else o.truth_bytes
            return web.Response(body=make(dataset, d, versions=versions), content_type="application/json")

        return handle

    async def amend(self, request: web.Request) -> web.Response:
        d = _ctl_date(request)
        q = request.query
        raw = q.get("dataset")
        if raw not in ("contratos", "atas"):
            raise _ctl_error(400, "query parameter dataset=contratos|atas is required")
        dataset: Dataset = "contratos" if raw == "contratos" else "atas"
        try:
            first = as_date(q["first"])
            last = as_date(q["last"]) if q.get("last") else None
            changed = self.outcomes.amend(dataset, d, first, last, float(q.get("share", "0.3")))
        except KeyError:
            raise _ctl_error(400, "query parameter first=YYYY-MM-DD (first publication day) is required") from None
        except ValueError as exc:
            raise _ctl_error(400, str(exc)) from None
        self.st.clear_listing_cache()
        return web.json_response({"updated": changed})


def add_outcome_routes(app: web.Application, st: SimState, outcomes: SimulatedOutcomes) -> None:
    """Register the contratos/atas endpoints (before the catch-all consulta route) and their controls."""
    h = _Outcomes(st, outcomes)
    r = app.router
    r.add_get("/api/consulta/v1/contratos", st.route("contratos", "consulta", h.listing("contratos")))
    r.add_get(
        "/api/consulta/v1/contratos/atualizacao",
        st.route("contratos_atualizacao", "consulta", h.listing("contratos_atualizacao")),
    )
    r.add_get("/api/consulta/v1/atas", st.route("atas", "consulta", h.listing("atas")))
    r.add_get(
        "/api/consulta/v1/atas/atualizacao", st.route("atas_atualizacao", "consulta", h.listing("atas_atualizacao"))
    )
    r.add_get("/_sim/truth/contratos", _ctl(h.truth("contratos", False)))
    r.add_get("/_sim/truth/contratos/atualizacao", _ctl(h.truth("contratos", True)))
    r.add_get("/_sim/truth/atas", _ctl(h.truth("atas", False)))
    r.add_get("/_sim/truth/atas/atualizacao", _ctl(h.truth("atas", True)))
    r.add_post("/_sim/amend", _ctl(h.amend))
