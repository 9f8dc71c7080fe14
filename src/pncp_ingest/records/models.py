"""Pydantic models of the PNCP records, tolerant of the API's type drift.

The models are the single definition of each record's columns: the Arrow schemas of the
bronze layer are derived from them (``records.schema``), so a field is named and typed once,
and each column type says exactly what fits it (``records.values``).

Tolerance, because what the API sends differs from its published OpenAPI spec:
- numbers where the spec says strings (``codigoIbge``) are kept as text;
- string enums that arrive as ints (``situacaoCompraId``) are plain ints, and ints that arrive
  as text are ints;
- date-times come without offset in Brasília local time and are kept as naive timestamps;
- a value that still does not fit its field is moved, untouched, into ``_extra`` and the
  field left null, and fields the models do not know are kept in ``_extra`` too: nothing
  the API returned is dropped (``records.rows``).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from .values import Flag, Int64, LocalDate, LocalDateTime, Money


class Record(BaseModel):
    """Base of every PNCP record: the column types of ``records.values``, unknown fields allowed (kept in ``_extra``)."""

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
    codigo: Int64 | None = None
    nome: str | None = None
    descricao: str | None = None


class FonteOrcamentaria(Record):
    codigo: Int64 | None = None
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
    anoCompra: Int64 | None = None
    sequencialCompra: Int64 | None = None
    numeroCompra: str | None = None
    processo: str | None = None
    modalidadeId: Int64 | None = None
    modalidadeNome: str | None = None
    modoDisputaId: Int64 | None = None
    modoDisputaNome: str | None = None
    tipoInstrumentoConvocatorioCodigo: Int64 | None = None
    tipoInstrumentoConvocatorioNome: str | None = None
    situacaoCompraId: Int64 | None = None
    situacaoCompraNome: str | None = None
    objetoCompra: str | None = None
    informacaoComplementar: str | None = None
    srp: Flag | None = None
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
    fontesOrcamentarias: list[FonteOrcamentaria | None] | None = None
    emendaParlamentar: Flag | None = None


class IdNome(Record):
    id: Int64 | None = None
    nome: str | None = None


class Contrato(Record):
    """One contrato or empenho as listed by ``/consulta/v1/contratos`` (RecuperarContratoDTO).

    ``numeroControlePncpCompra`` links it to its contratação (null for many empenhos)."""

    numeroControlePNCP: str
    numeroControlePncpCompra: str | None = None
    numeroControlePncpAta: str | None = None
    anoContrato: Int64 | None = None
    sequencialContrato: Int64 | None = None
    numeroContratoEmpenho: str | None = None
    processo: str | None = None
    tipoContrato: IdNome | None = None
    categoriaProcesso: IdNome | None = None
    receita: Flag | None = None
    objetoContrato: str | None = None
    informacaoComplementar: str | None = None
    orgaoEntidade: OrgaoEntidade | None = None
    unidadeOrgao: UnidadeOrgao | None = None
    orgaoSubRogado: OrgaoEntidade | None = None
    unidadeSubRogada: UnidadeOrgao | None = None
    tipoPessoa: str | None = None
    niFornecedor: str | None = None
    codigoPaisFornecedor: str | None = None
    nomeRazaoSocialFornecedor: str | None = None
    tipoPessoaSubContratada: str | None = None
    niFornecedorSubContratado: str | None = None
    nomeFornecedorSubContratado: str | None = None
    valorInicial: Money | None = None
    numeroParcelas: Int64 | None = None
    valorParcela: Money | None = None
    valorGlobal: Money | None = None
    valorAcumulado: Money | None = None
    dataAssinatura: LocalDateTime | None = None
    dataVigenciaInicio: LocalDateTime | None = None
    dataVigenciaFim: LocalDateTime | None = None
    numeroRetificacao: Int64 | None = None
    dataPublicacaoPncp: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    dataAtualizacaoGlobal: LocalDateTime | None = None
    identificadorCipi: str | None = None
    urlCipi: str | None = None
    usuarioNome: str | None = None
    emendaParlamentar: Flag | None = None
    temRemanejamento: Flag | None = None
    frutoAdesao: Flag | None = None


class Ata(Record):
    """One ata de registro de preço as listed by ``/consulta/v1/atas/atualizacao``
    (AtaRegistroPrecoPeriodoDTO). PNCP sends its dates as ``YYYY-MM-DD``: kept as midnight
    timestamps, like every other date, so a date-time sent later fits the same column."""

    numeroControlePNCPAta: str
    numeroControlePNCPCompra: str | None = None
    numeroAtaRegistroPreco: str | None = None
    anoAta: Int64 | None = None
    cancelado: Flag | None = None
    dataCancelamento: LocalDateTime | None = None
    dataAssinatura: LocalDateTime | None = None
    vigenciaInicio: LocalDateTime | None = None
    vigenciaFim: LocalDateTime | None = None
    dataPublicacaoPncp: LocalDateTime | None = None
    dataInclusao: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    dataAtualizacaoGlobal: LocalDateTime | None = None
    usuario: str | None = None
    objetoContratacao: str | None = None
    cnpjOrgao: str | None = None
    nomeOrgao: str | None = None
    cnpjOrgaoSubrogado: str | None = None
    nomeOrgaoSubrogado: str | None = None
    codigoUnidadeOrgao: str | None = None
    nomeUnidadeOrgao: str | None = None
    codigoUnidadeOrgaoSubrogado: str | None = None
    nomeUnidadeOrgaoSubrogado: str | None = None
    possibilidadeAdesao: Flag | None = None


class Catalogo(Record):
    id: Int64 | None = None
    nome: str | None = None
    descricao: str | None = None
    dataInclusao: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    statusAtivo: Flag | None = None
    url: str | None = None


class CodigoNome(Record):
    codigo: str | None = None
    nome: str | None = None


class Item(Record):
    """One item of a compra (``/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/itens``)."""

    numeroItem: Int64 | None = None
    descricao: str | None = None
    materialOuServico: str | None = None
    materialOuServicoNome: str | None = None
    valorUnitarioEstimado: Money | None = None
    valorTotal: Money | None = None
    quantidade: Money | None = None
    unidadeMedida: str | None = None
    orcamentoSigiloso: Flag | None = None
    itemCategoriaId: Int64 | None = None
    itemCategoriaNome: str | None = None
    patrimonio: str | None = None
    codigoRegistroImobiliario: str | None = None
    criterioJulgamentoId: Int64 | None = None
    criterioJulgamentoNome: str | None = None
    situacaoCompraItem: Int64 | None = None
    situacaoCompraItemNome: str | None = None
    tipoBeneficio: Int64 | None = None
    tipoBeneficioNome: str | None = None
    incentivoProdutivoBasico: Flag | None = None
    dataInclusao: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    temResultado: Flag | None = None
    imagem: Int64 | None = None
    aplicabilidadeMargemPreferenciaNormal: Flag | None = None
    aplicabilidadeMargemPreferenciaAdicional: Flag | None = None
    percentualMargemPreferenciaNormal: Money | None = None
    percentualMargemPreferenciaAdicional: Money | None = None
    ncmNbsCodigo: str | None = None
    ncmNbsDescricao: str | None = None
    catalogo: Catalogo | None = None
    categoriaItemCatalogo: Catalogo | None = None
    catalogoCodigoItem: str | None = None
    informacaoComplementar: str | None = None
    tipoMargemPreferencia: CodigoNome | None = None
    exigenciaConteudoNacional: Flag | None = None


class Arquivo(Record):
    """One document of a compra (``.../compras/{ano}/{seq}/arquivos``)."""

    sequencialDocumento: Int64 | None = None
    titulo: str | None = None
    tipoDocumentoId: Int64 | None = None
    tipoDocumentoNome: str | None = None
    tipoDocumentoDescricao: str | None = None
    url: str | None = None
    uri: str | None = None
    dataPublicacaoPncp: LocalDateTime | None = None
    cnpj: str | None = None
    anoCompra: Int64 | None = None
    sequencialCompra: Int64 | None = None
    statusAtivo: Flag | None = None


class Resultado(Record):
    """One result of an item: who won it, at what homologated price
    (``.../compras/{ano}/{seq}/itens/{numeroItem}/resultados``, RecuperarCompraItemResultadoDTO).

    An item has several when it is SRP (ranked by ``ordemClassificacaoSrp``) or when a result was
    cancelled (kept, with ``dataCancelamento``) and another took its place."""

    numeroControlePNCPCompra: str | None = None
    numeroItem: Int64 | None = None
    sequencialResultado: Int64 | None = None
    niFornecedor: str | None = None
    tipoPessoa: str | None = None
    nomeRazaoSocialFornecedor: str | None = None
    codigoPais: str | None = None
    porteFornecedorId: Int64 | None = None
    porteFornecedorNome: str | None = None
    naturezaJuridicaId: str | None = None
    naturezaJuridicaNome: str | None = None
    quantidadeHomologada: Money | None = None
    valorUnitarioHomologado: Money | None = None
    valorTotalHomologado: Money | None = None
    percentualDesconto: Money | None = None
    ordemClassificacaoSrp: Int64 | None = None
    dataResultado: LocalDate | None = None
    dataInclusao: LocalDateTime | None = None
    dataAtualizacao: LocalDateTime | None = None
    dataCancelamento: LocalDateTime | None = None
    motivoCancelamento: str | None = None
    situacaoCompraItemResultadoId: Int64 | None = None
    situacaoCompraItemResultadoNome: str | None = None
    indicadorSubcontratacao: Flag | None = None
    aplicacaoMargemPreferencia: Flag | None = None
    aplicacaoBeneficioMeEpp: Flag | None = None
    aplicacaoCriterioDesempate: Flag | None = None
    amparoLegalMargemPreferencia: CodigoNome | None = None
    amparoLegalCriterioDesempate: CodigoNome | None = None
    paisOrigemProdutoServico: CodigoNome | None = None
    moedaEstrangeira: CodigoNome | None = None
    valorNominalMoedaEstrangeira: Money | None = None
    dataCotacaoMoedaEstrangeira: LocalDateTime | None = None
    timezoneCotacaoMoedaEstrangeira: str | None = None
    localidadeFornecedor: str | None = None
    localidadeExterior: str | None = None
    reservaRemanescente: CodigoNome | None = None


DetailKind = Literal["itens", "arquivos", "resultados"]
"""What the detail API holds per compra; each kind is fetched, committed and retried on its own
(resultados per item: those of the compra's items with ``temResultado``)."""

DETAIL_KINDS: Final[tuple[DetailKind, ...]] = ("itens", "arquivos", "resultados")
DETAIL_MODELS: Final[dict[DetailKind, type[Record]]] = {"itens": Item, "arquivos": Arquivo, "resultados": Resultado}
