"""Each filter is declared once, on its ``SearchFilters`` field: the API's parameters, the CLI
options, the key of every checkpoint, which stored rows a sync judges and the fake API's
matching all follow that declaration; checkpoints keyed the older way are taken over."""

from __future__ import annotations

import argparse
import ast
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import vccasync
from vccasync._jsonio import dumps
from vccasync._query import FILTERS, make_filters, make_query
from vccasync._windows import Window
from vccasync.cli import build_parser
from vccasync.distributed import _tasks as tasks
from vccasync.fake import DatasetSpec, generate
from vccasync.fake._search import _SEARCH_PARAMS
from vccasync.stores._checkpoint import checkpoint_name, legacy_identity, query_identity
from vccasync.stores._output import open_sink
from vccasync.sync._scope import in_scope, scope_key

PACKAGE = Path(vccasync.__file__).parent
START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=6)
SAMPLES = {  # values that match some interactions of the dataset, and some that match none
    "direction": ["inbound", "outbound"],
    "connect_from": ["0", "44", "+1", "a"],
    "connect_to": ["1", "0044", "SUPPORT"],
    "handling_agent_id": ["1342", "9999999"],
}
SET = {"direction": "inbound", "connect_from": "0", "handling_agent_id": "1342"}


@pytest.fixture(scope="module")
def dataset() -> Any:
    return generate(DatasetSpec(seed=11, start=START, days=6, per_day=150))


def test_every_filter_is_on_every_searching_command_with_its_declared_help() -> None:
    commands = {
        name: parser
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, parser in action.choices.items()
    }
    for name in ("interactions", "content", "purge", "sync", "plan"):
        options = {o: a for a in commands[name]._actions for o in a.option_strings}
        for f in FILTERS:
            assert options[f.flag].help == f.help and options[f.flag].dest == f.name, (name, f)
    assert [f.name for f in FILTERS] == list(SAMPLES) == list(tasks.FILTERS)


def test_params_text_keys_and_the_fake_follow_the_declarations() -> None:
    filters = make_filters(**SET)
    assert filters.params() == {FILTERS_BY[name].api: value for name, value in SET.items()}
    assert filters.as_text() == SET
    assert json.loads(scope_key(filters)) == SET
    assert {f.api.lower() for f in FILTERS} <= set(_SEARCH_PARAMS)
    with pytest.raises(vccasync.InvalidRequestError, match="unknown filter"):
        make_filters(agent="1342")


def test_every_checkpoint_keys_its_filters_one_way() -> None:
    query = make_query(START, END, filters=make_filters(**SET))
    identity = query_identity(query)
    assert {k: identity[k] for k in SET} == SET  # as the sync's scope and the tasks key them
    assert "handling_agent_id=1342" in checkpoint_name(query)
    assert legacy_identity(query)["handlingAgentId"] == "1342"  # what older stores hold


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_fake_and_a_syncs_scope_match_as_declared(dataset: Any, name: str) -> None:
    declared = FILTERS_BY[name]
    every = dataset.expected(START, END)
    for value in SAMPLES[name]:
        want = [item for item in every if declared.matches(value, item)]
        assert dataset.expected(START, END, **{name: value}) == want, value
        key = scope_key(make_filters(**{name: value}))
        assert [i for i in every if in_scope(dumps(i), key)] == want, value
    assert any(dataset.expected(START, END, **{name: v}) for v in SAMPLES[name])


def test_only_the_declaration_names_a_filters_option_or_parameter() -> None:
    words = {f.flag for f in FILTERS} | {f.api for f in FILTERS if f.api != f.field}
    found = {
        (path.relative_to(PACKAGE).as_posix(), word)
        for path in PACKAGE.rglob("*.py")
        for word in _code_strings(path) & words
    }
    assert found == {("_query.py", word) for word in words}


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
async def test_a_file_checkpoint_keyed_by_the_apis_names_resumes(
    tmp_path: Path, suffix: str
) -> None:
    query = make_query(START, END, filters=make_filters(**SET))
    out = tmp_path / f"out{suffix}"
    async with await open_sink(str(out), query):
        pass
    _rewrite_stored_query(out, legacy_identity(query))  # as an older version left it
    async with await open_sink(str(out), query) as sink:  # not "holds a different backfill"
        assert sink.checkpoint.query == query_identity(query)
    assert _stored_query(out) == query_identity(query)  # rewritten the one way


async def test_a_postgresql_checkpoint_keyed_by_the_apis_names_is_taken_over(pg_dsn: str) -> None:
    query = make_query(START, END, filters=make_filters(**SET))
    legacy = legacy_identity(query)
    old_name = "interactions?old-form"
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with await open_sink(pg_dsn, make_query(START, END), account="acme"):
            pass  # the tables
        await conn.execute(
            "INSERT INTO vccasync_tasks (account, task, query, windows_total, written)"
            " VALUES ('acme', $1, $2::jsonb, 3, 1234)",
            old_name,
            json.dumps(legacy),
        )
        window = Window(START + timedelta(days=2), END, closed=True).key
        await conn.execute(
            "INSERT INTO vccasync_windows (account, task, window_key, token)"
            " VALUES ('acme', $1, $2, 'tok')",
            old_name,
            window,
        )
        async with await open_sink(pg_dsn, query, account="acme") as sink:
            checkpoint = sink.checkpoint
            assert (checkpoint.written, checkpoint.windows_total) == (1234, 3)
            assert checkpoint.pending == {window: "tok"}
        tasks_ = await conn.fetch("SELECT task, query FROM vccasync_tasks WHERE account = 'acme'")
        names = {row["task"] for row in tasks_}
        assert old_name not in names and checkpoint_name(query) in names
    finally:
        await conn.close()


FILTERS_BY = {f.name: f for f in FILTERS}


def _code_strings(path: Path) -> set[str]:
    """The string constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    }


def _stored_query(out: Path) -> dict[str, str]:
    if out.suffix == ".jsonl":
        return dict(json.loads(Path(f"{out}.checkpoint.json").read_text())["query"])
    with sqlite3.connect(out) as db:
        (state,) = db.execute("SELECT state FROM vccasync_checkpoint").fetchone()
    return dict(json.loads(state)["query"])


def _rewrite_stored_query(out: Path, query: dict[str, str]) -> None:
    if out.suffix == ".jsonl":
        path = Path(f"{out}.checkpoint.json")
        path.write_text(json.dumps({**json.loads(path.read_text()), "query": query}))
        return
    with sqlite3.connect(out) as db:
        (state,) = db.execute("SELECT state FROM vccasync_checkpoint").fetchone()
        db.execute(
            "UPDATE vccasync_checkpoint SET state = ?",
            (json.dumps({**json.loads(state), "query": query}),),
        )


def test_the_docs_table_lists_each_declared_filter() -> None:
    text = (PACKAGE.parent / "docs" / "library.md").read_text()
    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")][:3]
        for line in text.splitlines()
        if line.startswith("| `")
    ]
    assert rows == [[f.name, f.api, f.flag] for f in FILTERS]
