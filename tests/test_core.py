"""The pure core that decides what lands, tested fast and by property (Hypothesis).

Each property is checked against a plain-Python reference: the newest row of a key wins, or, for
``pncp_details``, the newest row completed from the older ones (``combine_details``).
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pncp_ingest.errors import ApiUnreachableError, LeaseHeldError, PncpIngestError, collapse
from pncp_ingest.pipeline.details import Compra, plan
from pncp_ingest.records.schema import CONTRATACOES, DETAILS, Dataset, combine_details
from pncp_ingest.state import DayState, accumulate
from pncp_ingest.storage import LocalStore, ObjectStore
from pncp_ingest.writer import _conform, merge, write_part

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = st.sampled_from([f"k{i}" for i in range(8)])
DAY = date(2025, 10, 22)


def contratacao(key: str, version: int) -> dict[str, Any]:
    return {"numeroControlePNCP": key, "objetoCompra": f"{key} v{version}"}


def detail(key: str, version: int, itens: bool, arquivos: bool) -> dict[str, Any]:
    return {
        "numeroControlePNCP": key,
        "itens": [{"numeroItem": n, "descricao": f"v{version}"} for n in range(1, version % 3 + 2)] if itens else None,
        "arquivos": [{"titulo": f"v{version}"}] if arquivos else None,
        "metadata": {"total_itens": version % 3 + 1 if itens else None, "total_arquivos": 1 if arquivos else None},
    }


# A part: rows with distinct keys (as a checkpoint writes them). Versions grow with the part index.
contratacao_parts = st.lists(st.lists(KEYS, unique=True, max_size=6), max_size=5).map(
    lambda parts: [[contratacao(k, i) for k in keys] for i, keys in enumerate(parts)]
)
detail_parts = st.lists(
    st.lists(st.tuples(KEYS, st.booleans(), st.booleans()), unique_by=lambda t: t[0], max_size=6), max_size=5
).map(
    lambda parts: [
        [detail(k, i, itens, arquivos or not itens) for k, itens, arquivos in part] for i, part in enumerate(parts)
    ]
)


def reference(parts: list[list[dict[str, Any]]], dataset: Dataset) -> dict[str, dict[str, Any]]:
    """What the published file must hold: per key, the newest row (completed by ``combine``)."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for row in part:
            older = out.get(row[dataset.key])
            out[row[dataset.key]] = row if older is None or dataset.combine is None else dataset.combine(older, row)
    return out


def normalise(rows: list[dict[str, Any]], dataset: Dataset) -> dict[str, dict[str, Any]]:
    """Rows as the schema shapes them (missing fields null), keyed, for comparison."""
    table = pa.Table.from_pylist(rows, schema=dataset.schema)
    return {row[dataset.key]: row for row in table.to_pylist()}


def write(rows: list[dict[str, Any]], dataset: Dataset, path: Path) -> Path:
    write_part(rows, dataset.schema, path)
    return path


def merge_all(parts: list[list[dict[str, Any]]], dataset: Dataset, cuts: list[int], workdir: Path) -> list[dict]:
    """Publish the parts in consecutive groups split at ``cuts``; return the published rows."""
    paths = [write(p, dataset, workdir / f"part-{i}.parquet") for i, p in enumerate(parts)]
    published: Path | None = None
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(paths))), len(paths)]
    for n, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        out = workdir / f"published-{n}.parquet"
        rows, keys = merge(published, paths[lo:hi], out, dataset)
        table = pq.read_table(out)
        assert rows == table.num_rows == len(keys) == len(set(keys))
        published = out
    return pq.read_table(published).to_pylist() if published else []


@pytest.mark.parametrize("dataset,parts", [(CONTRATACOES, contratacao_parts), (DETAILS, detail_parts)])
def test_any_split_into_publishes_gives_the_reference_rows(dataset, parts):
    @FAST
    @given(parts=parts, cuts=st.lists(st.integers(0, 5), max_size=4))
    def check(parts, cuts):
        with tempfile.TemporaryDirectory() as tmp:
            got = merge_all(parts, dataset, cuts, Path(tmp))
        expected = normalise(list(reference(parts, dataset).values()), dataset)
        assert {r[dataset.key]: r for r in got} == expected
        assert len(got) == len(expected)  # one row per key

    check()


@FAST
@given(parts=contratacao_parts, order=st.randoms())
def test_disjoint_parts_merge_the_same_in_any_order(parts, order):
    # Listing parts never share a key (known ids are skipped), so their order cannot matter.
    seen: set[str] = set()
    disjoint = [
        [r for r in part if r["numeroControlePNCP"] not in seen and not seen.add(r["numeroControlePNCP"])]
        for part in parts
    ]
    shuffled = list(disjoint)
    order.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        a = merge_all(disjoint, CONTRATACOES, [], Path(a_dir))
        b = merge_all(shuffled, CONTRATACOES, [], Path(b_dir))
    assert sorted(a, key=lambda r: r["numeroControlePNCP"]) == sorted(b, key=lambda r: r["numeroControlePNCP"])


@pytest.mark.parametrize("dataset,parts", [(CONTRATACOES, contratacao_parts), (DETAILS, detail_parts)])
def test_publishing_the_same_parts_again_changes_nothing(dataset, parts):
    # A crash after the published file is replaced but before the parts are forgotten re-publishes them.
    @FAST
    @given(parts=parts)
    def check(parts):
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            paths = [write(p, dataset, workdir / f"part-{i}.parquet") for i, p in enumerate(parts)]
            merge(None, paths, workdir / "once.parquet", dataset)
            merge(workdir / "once.parquet", paths, workdir / "twice.parquet", dataset)
            once, twice = pq.read_table(workdir / "once.parquet"), pq.read_table(workdir / "twice.parquet")
        key = dataset.key
        assert sorted(once.to_pylist(), key=lambda r: r[key]) == sorted(twice.to_pylist(), key=lambda r: r[key])

    check()


def test_conform_fills_missing_columns_with_nulls_and_keeps_the_rest():
    old = pa.table({"numeroControlePNCP": ["a"], "objetoCompra": ["x"]})
    table = _conform(old, CONTRATACOES.schema)
    assert table.schema == CONTRATACOES.schema
    row = table.to_pylist()[0]
    assert row["numeroControlePNCP"] == "a" and row["objetoCompra"] == "x" and row["valorTotalEstimado"] is None
    same = pa.Table.from_pylist([contratacao("a", 1)], schema=CONTRATACOES.schema)
    assert _conform(same, CONTRATACOES.schema) is same


def test_combine_details_keeps_the_kind_a_newer_row_did_not_fetch():
    older, newer = detail("a", 1, True, True), detail("a", 2, False, True)
    row = combine_details(older, newer)
    assert row["itens"] == older["itens"] and row["metadata"]["total_itens"] == older["metadata"]["total_itens"]
    assert row["arquivos"] == newer["arquivos"]
    fetched_again = detail("a", 5, True, False)
    assert combine_details(older, fetched_again)["itens"] == fetched_again["itens"]


metas = st.dictionaries(
    st.sampled_from(["itens", "arquivos", "gone"]),
    st.one_of(st.lists(KEYS, max_size=4), st.dictionaries(KEYS, st.text(max_size=3), max_size=3)),
    max_size=3,
).filter(lambda m: all(isinstance(m[k], dict) == (k == "gone") for k in m))


@FAST
@given(commits=st.lists(metas, max_size=6), order=st.randoms())
def test_accumulated_meta_does_not_depend_on_grouping_or_repetition(commits, order):
    def fold(items: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in items:
            out = accumulate(out, m)
        return out

    whole = fold(commits)
    # Publishing in two rounds (manifest meta, then the rest) gives the same aggregate...
    half = len(commits) // 2
    assert accumulate(fold(commits[:half]), fold(commits[half:])) == whole
    # ...and so does folding a commit twice (a re-publish after a crash).
    assert fold(commits + commits) == whole
    # Lists are unions: their order of arrival does not matter.
    shuffled = list(commits)
    order.shuffle(shuffled)
    lists = {k: v for k, v in fold(shuffled).items() if isinstance(v, list)}
    assert lists == {k: v for k, v in whole.items() if isinstance(v, list)}


compras = st.lists(KEYS, unique=True, max_size=8).map(lambda ids: [Compra(i, "00000000000191", 2025, 1) for i in ids])


@FAST
@given(
    compras=compras,
    itens=st.lists(KEYS, max_size=8),
    arquivos=st.lists(KEYS, max_size=8),
    gone=st.lists(KEYS, max_size=3),
    only=st.sampled_from([("itens", "arquivos"), ("itens",), ("arquivos",)]),
)
def test_plan_under_resume_never_schedules_committed_or_gone_work(compras, itens, arquivos, gone, only):
    done = {"itens": itens, "arquivos": arquivos, "gone": {g: "404" for g in gone}}
    todo = plan(compras, done, only, resume=True)
    for compra, kinds in todo:
        assert compra.id not in gone and kinds
        assert all(compra.id not in done[k] for k in kinds)
    # ...and nothing still missing is left out.
    scheduled = {c.id: set(k) for c, k in todo}
    for compra in compras:
        missing = {k for k in only if compra.id not in done[k]}
        assert scheduled.get(compra.id, set()) == (set() if compra.id in gone else missing)
    # --no-resume schedules everything, gone included.
    assert [(c.id, k) for c, k in plan(compras, done, only, resume=False)] == [(c.id, only) for c in compras]


def test_collapse_reports_our_error_from_nested_groups():
    ours = ApiUnreachableError("the API is unreachable")
    group = BaseExceptionGroup("tg", [ValueError("noise"), BaseExceptionGroup("inner", [ours])])
    assert collapse(group) is ours
    plain = LeaseHeldError("held")
    assert collapse(plain) is plain
    foreign = BaseExceptionGroup("tg", [KeyError("x")])
    assert isinstance(collapse(foreign), KeyError) and not isinstance(collapse(foreign), PncpIngestError)


# -- a crash between any two steps ---------------------------------------------------------------


class Crash(Exception):
    """The process died here."""


class CrashingStore(ObjectStore):
    """A local folder that dies before its ``budget``-th write: a kill -9 at every possible step."""

    def __init__(self, inner: LocalStore, budget: int) -> None:
        self.inner, self.budget, self.url = inner, budget, inner.url
        self.commits: list[int] = []

    def _step(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise Crash

    async def check(self) -> None:
        await self.inner.check()

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def put(self, key: str, data: bytes) -> None:
        self._step()
        await self.inner.put(key, data)

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        self._step()
        created = await self.inner.put_if_absent(key, data)
        if created and "/commits/" in key:
            self.commits.append(int(key.rsplit("/", 1)[-1].removesuffix(".json")))
        return created

    async def put_file(self, key: str, path: Path) -> None:
        self._step()
        await self.inner.put_file(key, path)

    async def get_file(self, key: str, path: Path) -> bool:
        return await self.inner.get_file(key, path)

    async def list(self, prefix: str) -> list[str]:
        return await self.inner.list(prefix)

    async def delete(self, keys: list[str]) -> None:
        for key in keys:  # one key at a time: a crash can fall between two deletions
            self._step()
            await self.inner.delete([key])

    async def remove_debris(self, prefix: str) -> int:
        return await self.inner.remove_debris(prefix)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)


async def _history(store: ObjectStore, parts: list[list[dict[str, Any]]], dataset: Dataset, tmp: Path) -> None:
    """Commit each part, publishing after every second one (what a run does, step by step)."""
    state = DayState(store, dataset, DAY)
    for i, rows in enumerate(parts):
        path = write(rows, dataset, tmp / f"p{i}.parquet")
        await state.commit(f"{i:05d}", path, [r[dataset.key] for r in rows])
        if i % 2:
            await state.publish("run")


@pytest.mark.parametrize("dataset,parts", [(CONTRATACOES, contratacao_parts), (DETAILS, detail_parts)])
def test_a_crash_between_any_two_steps_then_recovery_gives_the_committed_rows(dataset, parts):
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(parts=parts.filter(lambda p: all(p)), budget=st.integers(0, 40))
    def check(parts, budget):
        with tempfile.TemporaryDirectory() as tmp:
            root, work = Path(tmp) / "dest", Path(tmp) / "work"
            work.mkdir()
            committed: list[int] = []

            async def crash_then_recover() -> None:
                async with LocalStore(root) as local:
                    crashing = CrashingStore(local, budget)
                    try:
                        await _history(crashing, parts, dataset, work)
                    except Crash:
                        pass
                    # A part is committed once its commit record was created: count the record
                    # creations that went through (put_if_absent is the commit point).
                    committed.extend(crashing.commits)
                    state = DayState(local, dataset, DAY)
                    await state.remove_uncommitted()
                    await state.publish("recovery")

            anyio.run(crash_then_recover)
            published = root / dataset.published_key(DAY)
            got = pq.read_table(published).to_pylist() if published.exists() else []
        expected = normalise(list(reference([parts[i] for i in committed], dataset).values()), dataset)
        assert {r[dataset.key]: r for r in got} == expected and len(got) == len(expected)

    check()
