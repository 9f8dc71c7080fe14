"""Pydantic models of the PNCP records, tolerant of the API's type drift.

The models are the single definition of each record's columns: the Arrow schemas of the
bronze layer are derived from them (``records.schema``), so a field is named and typed once.

Tolerance, because what the API sends differs from its published OpenAPI spec:
- numbers where the spec says strings (``codigoIbge``) are coerced to text;
- string enums that arrive as ints (``situacaoCompraId``) are plain ints;
- date-times come without offset in Brasília local time and are kept as naive timestamps;
- a value that still does not fit its field is moved, untouched, into ``_extra`` and the
  field left null, and fields the models do not know are kept in ``_extra`` too: nothing
  the API returned is dropped.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError, create_model

from ..dates import BRASILIA


def _local_datetime(value: Any) -> Any:
    """PNCP sends Brasília wall time without offset; if an offset ever appears, convert to it."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(BRASILIA).replace(tzinfo=None)
        return parsed
    return value


LocalDateTime = Annotated[datetime, BeforeValidator(_local_datetime)]
"""A timestamp in Brasília local time (America/Sao_Paulo), stored without a zone as the API sends it."""

Money = Annotated[Decimal, "money"]
"""An exact decimal (the API sends up to 4 decimal places); stored as decimal128(38, 6)."""


class Record(BaseModel):
    """Base of every PNCP record: lax types, unknown fields allowed (and later kept in ``_extra``)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, frozen=False)


class OrgaoEntidade(Record):
    cnpj: str | None = None
    razaoSocial: str | None = None
    poderId: str | None = None
    esferaId: str | None = None


class UnidadeOrgao(Record):
    ufNome: str | None = None
    ufSigla: str | None = None
    municipioNome: str | None = None
    codigoUnidade: str | None = None
    nomeUnidade: str | None = None
    codigoIbge: str | None = None


class AmparoLegal(Record):
    codigo: int | None = None
    nome: str | None = None
    descricao: str | None = None


class FonteOrcamentaria(Record):
    codigo: int | None = None
    nome: str | None = None
    descricao: str | None = None
    dataInclusao: LocalDateTime | None = None


class Contratacao(Record):
    """One contratação as listed by ``/consulta/v1/contratacoes/publicacao`` (RecuperarCompraPublicacaoDTO)."""

    numeroControlePNCP: str
    orgaoEntidade: OrgaoEntidade | None = None
    unidadeOrgao: UnidadeOrgao | None = None
    orgaoSubRogado: OrgaoEntidade | None = None
    unidadeSubRogada: UnidadeOrgao | None = None
    anoCompra: int | None = None
    sequencialCompra: int | None = None
    numeroCompra: str | None = None
    processo: str | None = None
    modalidadeId: int | None = None
    modalidadeNome: str | None = None
    modoDisputaId: int | None = None
    modoDisputaNome: str | None = None
    tipoInstrumentoConvocatorioCodigo: int | None = None
    tipoInstrumentoConvocatorioNome: str | None = None
    situacaoCompraId: int | None = None
    situacaoCompraNome: str | None = None
    objetoCompra: str | None = None
    informacaoComplementar: str | None = None
    srp: bool | None = None
    amparoLegal: AmparoLegal | None = None
    valorTotalEstimado: Money | None = None
    valorTotalHomologado: Money | None = None
    dataAberturaProposta: LocalDateTime | None = None
    dataEncerramentoProposta: LocalDateTime | None = None
    dataPublicacaoPncp: LocalDateTime | None = None
    dataInclusao: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    dataAtualizacaoGlobal: LocalDateTime | None = None
    linkSistemaOrigem: str | None = None
    linkProcessoEletronico: str | None = None
    justificativaPresencial: str | None = None
    usuarioNome: str | None = None
    fontesOrcamentarias: list[FonteOrcamentaria] | None = None
    emendaParlamentar: bool | None = None


class Catalogo(Record):
    id: int | None = None
    nome: str | None = None
    descricao: str | None = None
    dataInclusao: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    statusAtivo: bool | None = None
    url: str | None = None


class CodigoNome(Record):
    codigo: str | None = None
    nome: str | None = None


class Item(Record):
    """One item of a compra (``/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/itens``)."""

    numeroItem: int | None = None
    descricao: str | None = None
    materialOuServico: str | None = None
    materialOuServicoNome: str | None = None
    valorUnitarioEstimado: Money | None = None
    valorTotal: Money | None = None
    quantidade: Money | None = None
    unidadeMedida: str | None = None
    orcamentoSigiloso: bool | None = None
    itemCategoriaId: int | None = None
    itemCategoriaNome: str | None = None
    patrimonio: str | None = None
    codigoRegistroImobiliario: str | None = None
    criterioJulgamentoId: int | None = None
    criterioJulgamentoNome: str | None = None
    situacaoCompraItem: int | None = None
    situacaoCompraItemNome: str | None = None
    tipoBeneficio: int | None = None
    tipoBeneficioNome: str | None = None
    incentivoProdutivoBasico: bool | None = None
    dataInclusao: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    temResultado: bool | None = None
    imagem: int | None = None
    aplicabilidadeMargemPreferenciaNormal: bool | None = None
    aplicabilidadeMargemPreferenciaAdicional: bool | None = None
    percentualMargemPreferenciaNormal: Decimal | None = None
    percentualMargemPreferenciaAdicional: Decimal | None = None
    ncmNbsCodigo: str | None = None
    ncmNbsDescricao: str | None = None
    catalogo: Catalogo | None = None
    categoriaItemCatalogo: Catalogo | None = None
    catalogoCodigoItem: str | None = None
    informacaoComplementar: str | None = None
    tipoMargemPreferencia: CodigoNome | None = None
    exigenciaConteudoNacional: bool | None = None


class Arquivo(Record):
    """One document of a compra (``.../compras/{ano}/{seq}/arquivos``)."""

    sequencialDocumento: int | None = None
    titulo: str | None = None
    tipoDocumentoId: int | None = None
    tipoDocumentoNome: str | None = None
    tipoDocumentoDescricao: str | None = None
    url: str | None = None
    uri: str | None = None
    dataPublicacaoPncp: LocalDateTime | None = None
    cnpj: str | None = None
    anoCompra: int | None = None
    sequencialCompra: int | None = None
    statusAtivo: bool | None = None


DetailKind = Literal["itens", "arquivos"]
"""What the detail API lists per compra; each kind is fetched, committed and retried on its own."""

DETAIL_KINDS: Final[tuple[DetailKind, ...]] = ("itens", "arquivos")
DETAIL_MODELS: Final[dict[DetailKind, type[Record]]] = {"itens": Item, "arquivos": Arquivo}

R = TypeVar("R", bound=Record)

_MAX_REPAIRS = 50


def _pop_path(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    """Remove the value at ``loc`` from nested dicts/lists (in place); (found, value)."""
    node = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    last = loc[-1]
    if isinstance(node, dict) and last in node:
        return True, node.pop(last)
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        value = node[last]
        node[last] = None
        return True, value
    return False, None


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def validate(model: type[R], raw: dict[str, Any]) -> tuple[R, dict[str, Any]]:
    """Validate ``raw`` tolerantly: returns the model and the values that did not fit.

    A value that fails its field's type is removed (the field becomes null) and returned
    under its dotted path, so the caller can keep it in ``_extra``. Only the record's
    identity (a required field) failing makes this raise.
    """
    try:
        return model.model_validate(raw), {}
    except ValidationError as first:
        errors = first.errors()
    data = _copy(raw)
    misfits: dict[str, Any] = {}
    for _ in range(_MAX_REPAIRS):
        progressed = False
        for err in errors:
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            # Union members add their type name to loc (e.g. 'int', 'str'); strip what is not in the data.
            while loc:
                found, value = _pop_path(data, loc)
                if found:
                    misfits[".".join(str(p) for p in loc)] = value
                    progressed = True
                    break
                loc = loc[:-1]
        try:
            return model.model_validate(data), misfits
        except ValidationError as again:
            errors = again.errors()
        if not progressed:
            break
    raise ValueError(f"record does not fit {model.__name__}: {errors[0]['msg']} at {errors[0]['loc']}")


def extras(record: Record, prefix: str = "") -> dict[str, Any]:
    """Unknown fields of ``record`` and of its nested records, keyed by dotted path."""
    found: dict[str, Any] = {}
    for key, value in (record.model_extra or {}).items():
        found[prefix + key] = value
    for name in type(record).model_fields:
        value = getattr(record, name)
        if isinstance(value, Record):
            found.update(extras(value, f"{prefix}{name}."))
        elif isinstance(value, list):
            for i, element in enumerate(value):
                if isinstance(element, Record):
                    found.update(extras(element, f"{prefix}{name}.{i}."))
    return found


def to_row(record: Record) -> dict[str, Any]:
    """The record's known fields as plain Python values (nested records as dicts), for Arrow."""
    row: dict[str, Any] = {}
    for name in type(record).model_fields:
        value = getattr(record, name)
        if isinstance(value, Record):
            value = to_row(value)
        elif isinstance(value, list):
            value = [to_row(v) if isinstance(v, Record) else v for v in value]
        row[name] = value
    return row


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def bronze_row(model: type[R], raw: dict[str, Any]) -> dict[str, Any]:
    """One raw API record → a bronze row: typed known fields plus ``_extra`` (JSON text or null)."""
    try:  # the common case, all in pydantic-core: every field known and fitting
        row = _exact(model).model_validate(raw).model_dump()
    except ValidationError:
        return _tolerant_row(model, raw)
    row["_extra"] = None
    return row


def bronze_rows_json(model: type[R], body: bytes) -> list[dict[str, Any]]:
    """A response body holding a JSON array of records → their bronze rows, as :func:`bronze_row`.

    The common case (every record's fields known and fitting) is parsed, validated and turned
    into rows in one pass in pydantic-core, without building the raw dicts first; a body with
    anything unusual is decoded again and each record goes the tolerant way. Raises ValueError
    if the body is not a JSON array (e.g. truncated) or a record lacks its identity.
    """
    adapter = _exact_list(model)
    try:
        rows: list[dict[str, Any]] = adapter.dump_python(adapter.validate_json(body))
    except ValidationError:
        raws = json.loads(body)
        if not isinstance(raws, list):
            raise ValueError(f"expected a JSON array of {model.__name__} records, got {type(raws).__name__}") from None
        return [bronze_row(model, raw) for raw in raws]
    for row in rows:
        row["_extra"] = None
    return rows


def _tolerant_row(model: type[R], raw: dict[str, Any]) -> dict[str, Any]:
    record, misfits = validate(model, raw)
    kept = {**extras(record), **misfits}
    row = to_row(record)
    row["_extra"] = json.dumps(kept, ensure_ascii=False, sort_keys=True, default=_json_default) if kept else None
    return row


@functools.cache
def _exact(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with the same fields and validators but no room for anything else (extra="forbid").

    Validating with it succeeds exactly when the tolerant path would find nothing for ``_extra``,
    and then gives the same values; anything else raises and goes the tolerant way."""

    def exact(annotation: Any) -> Any:
        origin = typing.get_origin(annotation)
        if origin in (Union, types.UnionType):
            return Union[tuple(exact(a) for a in typing.get_args(annotation))]  # noqa: UP007 (built at run time)
        if origin is Annotated:
            inner, *metadata = typing.get_args(annotation)
            return Annotated[(exact(inner), *metadata)]
        if origin is list:
            return _list_of(exact(typing.get_args(annotation)[0]))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return _exact(annotation)
        return annotation

    fields: dict[str, Any] = {
        name: (exact(info.annotation), ... if info.is_required() else info.default)
        for name, info in model.model_fields.items()
    }
    config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    return create_model(f"{model.__name__}Exact", __config__=config, __module__=__name__, **fields)


@functools.cache
def _exact_list(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(_list_of(_exact(model)))


def _list_of(item: Any) -> Any:
    """``list[item]`` for an item type made at run time, which a static ``list[...]`` cannot name."""
    return types.GenericAlias(list, (item,))
