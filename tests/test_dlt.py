"""The dlt source against the fake API, loaded into DuckDB (skipped without dlt).

The fake's data changes on a manual clock (late content, updated pieces, removals); every
interaction starts before the wall clock, so a run, which scans up to the wall clock's now,
sees the fake exactly as its clock stands. The lookback covers the whole data set, so every
removal upstream falls inside the span a run checks. dlt's telemetry is off, its files are
kept under the test's temporary directory, and any connection attempt to an address other
than loopback fails the test.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

dlt = pytest.importorskip("dlt")
duckdb = pytest.importorskip("duckdb")

from vccasync import VccClient  # noqa: E402
from vccasync._errors import InvalidRequestError  # noqa: E402
from vccasync._instants import parse_instant  # noqa: E402
from vccasync.content._manifest import MANIFEST_NAME, Manifest  # noqa: E402
from vccasync.dlt import _account as account_module  # noqa: E402
from vccasync.dlt import _source as source_module  # noqa: E402
from vccasync.dlt import vcc_source  # noqa: E402
from vccasync.dlt.__main__ import main as dlt_main  # noqa: E402
from vccasync.dlt._ledger import Ledger  # noqa: E402
from vccasync.dlt._rows import interaction_from_row, interaction_row  # noqa: E402
from vccasync.fake import (  # noqa: E402
    DatasetSpec,
    FakeConfig,
    FakeVccServer,
    FaultConfig,
    generate,
    running_in_thread,
)
from vccasync.fake._dataset import Dataset  # noqa: E402
from vccasync.fake._timeline import FakeClock, Timeline, TimelineSpec  # noqa: E402
from vccasync.sync import Span  # noqa: E402

from .conftest import api_shape  # noqa: E402

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
SINCE = datetime(2026, 11, 17, tzinfo=UTC)
SPEC = DatasetSpec(
    seed=3, start=SINCE, days=4, per_day=50, edge_every=None, content_scale=0.001
)  # fmt: skip
CHANGING = TimelineSpec(late_rate=0.3, update_rate=0.4, removal_rate=0.06)
LATER = CHANGING.settle + CHANGING.removal_within  # every late piece and removal has happened
FAST = {"since": SINCE.isoformat(), "lookback": "6d", "limit": 25, "requests_per_minute": None}
LOOPBACK = ("127.0.0.1", "::1", "localhost")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """dlt's telemetry off, its files under ``tmp_path``, and no connection beyond loopback."""
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-data"))
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SOURCES__VCC__"):
            monkeypatch.delenv(name)
    outside: list[Any] = []
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            outside.append(address)
            raise OSError(f"test: no connection beyond loopback ({address!r})")
        return connect(self, address)

    def guarded_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (*LOOPBACK, None) and not str(host).startswith("127."):
            outside.append(host)
            raise socket.gaierror(f"test: no lookup beyond loopback ({host!r})")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    yield outside
    assert outside == [], f"connections beyond loopback were attempted: {outside}"


@pytest.fixture
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def timeline(dataset: Dataset, clock: FakeClock) -> Timeline:
    return Timeline.for_dataset(dataset, clock, CHANGING)


@pytest.fixture
def fake(dataset: Dataset, timeline: Timeline) -> Iterator[FakeVccServer]:
    with running_in_thread(dataset, FakeConfig(timeline=timeline)) as server:
        yield server


def credentials(fake: FakeVccServer) -> dict[str, str]:
    return {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "api_url": fake.api_url,
        "auth_url": fake.auth_url,
    }


def pipeline(tmp_path: Path, name: str = "vcc") -> Any:
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(tmp_path / "vcc.duckdb")),
        dataset_name="vcc_data",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).fetchall()  # type: ignore[no-any-return]


def api_now(dataset: Dataset, timeline: Timeline, **filters: Any) -> dict[str, dict[str, Any]]:
    """What the API returns now for the whole data set, by guid, as rows hold it."""
    items = timeline.expected(dataset, SINCE, SPEC.end + timedelta(days=1), **filters)
    return {item["guid"]: expected_row(api_shape(item)) for item in items}


def expected_row(item: dict[str, Any]) -> dict[str, Any]:
    pieces = {
        p["contentKey"]: (parse_instant(p["lastModified"]), p["contentLength"])
        for p in item["content"]
    }
    return {
        "start": parse_instant(item["start"]),
        "connect_from": item.get("connectFrom"),
        "connect_to": item.get("connectTo"),
        "direction": item.get("direction"),
        "pieces": pieces,
    }


def destination(path: Path) -> dict[str, dict[str, Any]]:
    """The ``interactions`` rows by guid (with ``removed_at`` and ``account``) and their pieces;
    fails on a guid loaded twice or a piece without its interaction."""
    rows = query(
        path,
        "select guid, start, connect_from, connect_to, direction, removed_at, account, _dlt_id"
        " from vcc_data.interactions",
    )
    assert len({row[0] for row in rows}) == len(rows), "a guid is loaded twice"
    by_id: dict[str, dict[str, Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for guid, start, frm, to, direction, removed, account, dlt_id in rows:
        out[guid] = {
            "start": start,
            "connect_from": frm,
            "connect_to": to,
            "direction": direction,
            "pieces": {},
            "removed_at": removed,
            "account": account,
        }
        by_id[dlt_id] = out[guid]
    pieces = query(
        path,
        "select _dlt_parent_id, content_key, last_modified, content_length"
        " from vcc_data.interactions__content",
    )
    for parent, key, modified, length in pieces:
        assert parent in by_id, "a piece without its interaction"
        assert key not in by_id[parent]["pieces"], "a piece loaded twice"
        by_id[parent]["pieces"][key] = (modified, length)
    return out


def present(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows not marked removed, as :func:`api_now` gives them."""
    keep = ("start", "connect_from", "connect_to", "direction", "pieces")
    return {g: {k: r[k] for k in keep} for g, r in rows.items() if r["removed_at"] is None}


def loaded(pipe: Any, table: str = "interactions") -> int:
    """Rows of ``table`` the pipeline's last run loaded."""
    return int(pipe.last_trace.last_normalize_info.row_counts.get(table, 0))


def set_credentials(monkeypatch: pytest.MonkeyPatch, fake: FakeVccServer, section: str) -> None:
    for key, value in credentials(fake).items():
        monkeypatch.setenv(f"{section}__{key.upper()}", value)


def test_first_load_equals_the_api_with_credentials_from_dlt_config(
    tmp_path: Path,
    fake: FakeVccServer,
    dataset: Dataset,
    timeline: Timeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_credentials(monkeypatch, fake, "SOURCES__VCC")
    pipe = pipeline(tmp_path)
    pipe.run(vcc_source(**FAST, account="acme"))
    rows = destination(tmp_path / "vcc.duckdb")
    api = api_now(dataset, timeline)
    assert len(api) > 100
    assert present(rows) == api
    assert {r["account"] for r in rows.values()} == {"acme"}
    assert all(isinstance(r["connect_from"], str) for r in rows.values() if r["connect_from"])
    assert fake.stats.token_requests == 1  # one client, one session


@pytest.mark.parametrize("removals", ["soft", "hard"])
def test_next_run_loads_only_changes_and_carries_removals(
    tmp_path: Path,
    fake: FakeVccServer,
    dataset: Dataset,
    timeline: Timeline,
    clock: FakeClock,
    removals: str,
) -> None:
    pipe = pipeline(tmp_path)
    pipe.run(vcc_source(**credentials(fake), **FAST, removals=removals))
    before = api_now(dataset, timeline)
    assert present(destination(tmp_path / "vcc.duckdb")) == before
    clock.advance(LATER)
    after = api_now(dataset, timeline)
    gone = set(before) - set(after)
    changed = {g for g in after if before.get(g) != after[g]}  # new ones and late content
    assert gone and changed - set(before) and changed & set(before)

    pipe.run(vcc_source(**credentials(fake), **FAST, removals=removals))
    assert loaded(pipe) == len(changed) + len(gone)  # nothing unchanged is loaded again
    rows = destination(tmp_path / "vcc.duckdb")
    assert present(rows) == after
    if removals == "hard":
        assert set(rows) == set(after)
    else:
        marked = {g for g, r in rows.items() if r["removed_at"] is not None}
        assert marked == gone
        for guid in gone:  # the last version is kept, with its pieces
            kept = {k: v for k, v in rows[guid].items() if k in before[guid]}
            assert kept == before[guid]

    pipe.run(vcc_source(**credentials(fake), **FAST, removals=removals))
    assert loaded(pipe) == 0
    assert destination(tmp_path / "vcc.duckdb") == rows


def test_a_run_failing_half_way_is_repeated_whole_by_the_next(
    tmp_path: Path,
    fake: FakeVccServer,
    dataset: Dataset,
    timeline: Timeline,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = pipeline(tmp_path)
    pipe.run(vcc_source(**credentials(fake), **FAST))
    clock.advance(LATER)
    real = source_module.interaction_row
    made = 0

    def failing(*args: Any) -> dict[str, Any]:
        nonlocal made
        made += 1
        if made > 30:  # past the first pages of the run
            raise RuntimeError("killed half-way")
        return real(*args)

    monkeypatch.setattr(source_module, "interaction_row", failing)
    with pytest.raises(Exception, match="killed half-way"):
        pipe.run(vcc_source(**credentials(fake), **FAST))
    monkeypatch.setattr(source_module, "interaction_row", real)
    pipe.run(vcc_source(**credentials(fake), **FAST))
    rows = destination(tmp_path / "vcc.duckdb")
    assert present(rows) == api_now(dataset, timeline)
    assert loaded(pipe) > 30  # the failed run's changes came again


def test_a_killed_process_is_rerun_without_loss_or_duplicates(
    tmp_path: Path, dataset: Dataset, timeline: Timeline
) -> None:
    """``python -m vccasync.dlt`` killed (SIGKILL) while the fake holds its fourth page."""
    with running_in_thread(dataset, FakeConfig(timeline=timeline, hold_after=3)) as fake:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **{f"SOURCES__VCC__{k.upper()}": v for k, v in credentials(fake).items()},
        }
        args = [
            sys.executable, "-m", "vccasync.dlt", "--duckdb", str(tmp_path / "vcc.duckdb"),
            "--pipelines-dir", str(tmp_path / "pipelines"), "--since", SINCE.isoformat(),
            "--lookback", "6d", "--rpm", "100000", "--limit", "25",
        ]  # fmt: skip
        process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            if not fake.gate.wait_held(30):
                process.kill()
                pytest.fail(f"the run never reached the gate: {process.communicate()[1]}")
            process.send_signal(signal.SIGKILL)
            assert process.wait(30) == -signal.SIGKILL
        finally:
            process.kill()
        fake.gate.open()
        pipe = pipeline(tmp_path)  # the same pipeline, dataset and working directory
        pipe.run(vcc_source(**credentials(fake), **FAST))
    rows = destination(tmp_path / "vcc.duckdb")
    assert present(rows) == api_now(dataset, timeline)


def test_content_resource_archives_pieces_and_their_versions(
    tmp_path: Path,
    fake: FakeVccServer,
    dataset: Dataset,
    timeline: Timeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = tmp_path / "archive"
    pipe = pipeline(tmp_path)
    clients: list[str] = []

    class Counted(VccClient):
        async def __aenter__(self) -> Counted:
            clients.append("open")
            return await super().__aenter__()

        async def __aexit__(self, *exc: Any) -> None:
            clients.append("closed")
            await super().__aexit__(*exc)

    monkeypatch.setattr(account_module, "VccClient", Counted)
    pipe.run(vcc_source(**credentials(fake), **FAST, content_dest=str(dest)))
    assert clients == ["open", "closed"]  # interactions and content: one client, closed
    assert fake.stats.token_requests == 1
    api = api_now(dataset, timeline)
    pieces = {(g, k) for g, row in api.items() for k in row["pieces"]}
    content = content_rows(tmp_path / "vcc.duckdb")
    assert set(content) == pieces
    manifest = Manifest.load(dest / MANIFEST_NAME)
    for (guid, key), row in content.items():
        entry = manifest.get(guid, key)
        assert entry is not None
        data = (dest / row["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] == entry.sha256
        assert len(data) == row["bytes"] == row["content_length"]
        assert (row["last_modified"], row["content_length"]) == api[guid]["pieces"][key]
        assert row["etag"] == entry.etag and row["http_last_modified"] == entry.http_last_modified

    guid, key = sorted(pieces)[0]
    fake.reprocess(guid, key, length=7)  # a new version upstream
    fake.reset_stats()
    pipe.run(vcc_source(**credentials(fake), **FAST, content_dest=str(dest)))
    assert fake.stats.content_requests == 1
    assert loaded(pipe, "content") == len(api[guid]["pieces"])
    row = content_rows(tmp_path / "vcc.duckdb")[guid, key]
    modified, length = api_now(dataset, timeline)[guid]["pieces"][key]
    assert (row["last_modified"], row["bytes"]) == (modified, length)
    assert modified > api[guid]["pieces"][key][0] and length != api[guid]["pieces"][key][1]
    data = (dest / row["path"]).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (length, row["sha256"])


def test_a_piece_that_fails_fails_the_run_and_the_next_fetches_it(
    tmp_path: Path, fake: FakeVccServer, dataset: Dataset, timeline: Timeline
) -> None:
    dest = tmp_path / "archive"
    retries = {"max_attempts": 2, "backoff_initial": 0.001, "backoff_max": 0.01}
    settings = {**credentials(fake), **FAST, "content_dest": str(dest), "client_options": retries}
    fake.inject_faults(FaultConfig(rate=1.0, kinds=("500",), requests=frozenset({"content"})))
    pipe = pipeline(tmp_path)
    with pytest.raises(Exception, match=r"piece\(s\) of content could not be downloaded"):
        pipe.run(vcc_source(**settings))
    fake.inject_faults(FaultConfig())
    pipe.run(vcc_source(**settings))
    api = api_now(dataset, timeline)
    assert present(destination(tmp_path / "vcc.duckdb")) == api
    assert set(content_rows(tmp_path / "vcc.duckdb")) == {
        (g, k) for g, row in api.items() for k in row["pieces"]
    }


def test_content_alone_is_refused(tmp_path: Path, fake: FakeVccServer) -> None:
    """The interactions' state would advance while their rows are not loaded."""
    source = vcc_source(**credentials(fake), **FAST, content_dest=str(tmp_path / "archive"))
    with pytest.raises(Exception, match="content needs interactions selected too"):
        pipeline(tmp_path).run(source.with_resources("content"))
    assert fake.stats.requests == 0


def content_rows(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    names = ("path", "sha256", "bytes", "content_length", "last_modified", "etag")
    rows = query(
        path,
        f"select guid, content_key, {', '.join(names)}, http_last_modified, account"
        " from vcc_data.content",
    )
    assert len({r[:2] for r in rows}) == len(rows)
    return {
        (r[0], r[1]): dict(zip((*names, "http_last_modified", "account"), r[2:], strict=True))
        for r in rows
    }


def test_several_accounts_load_into_the_same_tables(
    tmp_path: Path, fake: FakeVccServer, dataset: Dataset, timeline: Timeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    other_data = generate(DatasetSpec(seed=4, start=SINCE, days=2, per_day=20, edge_every=None))
    with running_in_thread(other_data) as other:
        set_credentials(monkeypatch, fake, "SOURCES__VCC__ACCOUNTS__EU")
        set_credentials(monkeypatch, other, "SOURCES__VCC__ACCOUNTS__US_EAST")
        source = vcc_source(**FAST, accounts=["eu", "us-east"])
        assert set(source.resources) == {
            "interactions_eu", "content_eu", "interactions_us_east", "content_us_east"
        }  # fmt: skip
        pipeline(tmp_path).run(source)
    rows = destination(tmp_path / "vcc.duckdb")
    eu = {g: r for g, r in rows.items() if r["account"] == "eu"}
    us = {g: r for g, r in rows.items() if r["account"] == "us-east"}
    assert present(eu) == api_now(dataset, timeline)
    assert set(us) == {i["guid"] for i in other_data.visible()}
    assert len(rows) == len(eu) + len(us)


def test_filters_load_what_the_filtered_search_returns(
    tmp_path: Path, fake: FakeVccServer, dataset: Dataset, timeline: Timeline, clock: FakeClock
) -> None:
    pipe = pipeline(tmp_path)
    pipe.run(vcc_source(**credentials(fake), **FAST, direction="outbound"))
    assert present(destination(tmp_path / "vcc.duckdb")) == api_now(
        dataset, timeline, direction="outbound"
    )
    clock.advance(LATER)
    pipe.run(vcc_source(**credentials(fake), **FAST, direction="outbound"))
    rows = destination(tmp_path / "vcc.duckdb")
    assert present(rows) == api_now(dataset, timeline, direction="outbound")
    assert {r["direction"] for r in rows.values()} == {"outbound"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"removals": "sideways"}, "removals must be"),
        ({"lookback": "soon"}, "lookback must look like"),
        ({"since": "yesterday"}, "since must be an ISO 8601"),
        ({"direction": "up"}, "direction must be"),
        ({"limit": 0}, "limit must be"),
        ({"content_types": "transcript"}, "content_types must be a list"),
        ({"accounts": ["eu", "EU"]}, "distinct names"),
        ({"account": ""}, "account must be a non-empty name"),
        ({"client_options": {"max_attempts": 0}}, "max_attempts must be at least 1"),
        ({"client_options": {"api_url": "http://x"}}, "client_options must not set api_url"),
        ({"client_secret": None}, "no credentials for account 'default'"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    fake: FakeVccServer, arguments: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {**credentials(fake), **FAST, **arguments}
    with pytest.raises(InvalidRequestError, match=message):
        vcc_source(**settings)
    assert fake.stats.requests == fake.stats.token_requests == 0


def test_first_load_without_since_says_so(tmp_path: Path, fake: FakeVccServer) -> None:
    settings = {**credentials(fake), **FAST, "since": None}
    with pytest.raises(Exception, match="the first load needs since"):
        pipeline(tmp_path).run(vcc_source(**settings))
    assert fake.stats.requests == 0


def test_demo_loads_a_duckdb_file_then_only_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dlt_main(["--demo"]) == 0
    first = capsys.readouterr().err
    count = query(tmp_path / "vcc.duckdb", "select count(*) from vcc_data.interactions")[0][0]
    assert count > 100
    assert f"interactions {count:,}" in first
    assert dlt_main(["--demo"]) == 0
    second = capsys.readouterr().err
    again = int(second.split("interactions ")[1].split(",")[0].split()[0])
    assert again < count // 10  # only what changed in the seconds between the runs
    assert {p.name for p in tmp_path.iterdir()} <= {"vcc.duckdb", "dlt-data"}


def test_bad_options_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dlt_main(["--demo", "--lookback", "soon"]) == 2
    assert capsys.readouterr().err.strip() == (
        "vccasync.dlt: error: --lookback must look like 90m, 48h, 2d, 1h30m or ISO 8601"
        " (PT90M, P2D), got 'soon'"
    )
    assert dlt_main([]) == 2  # no credentials configured
    assert "no credentials for account 'default'" in capsys.readouterr().err
    assert dlt_main(["--demo", "--content-dest", str(tmp_path / "c"), "--type", "callrec"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "callRecording" in err
    assert not (tmp_path / "vcc.duckdb").exists()


def test_importing_vccasync_does_not_import_dlt() -> None:
    code = "import sys, vccasync; assert 'dlt' not in sys.modules, sorted(sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False
    )
    assert done.returncode == 0


def test_rows_round_trip_and_the_ledger_judges_only_its_span(dataset: Dataset) -> None:
    from vccasync._converter import structure_interaction

    items = [structure_interaction(dataset.item(p)) for p in range(6)]
    for item in items:
        assert interaction_from_row(interaction_row(item, "a")) == item
    state: dict[str, Any] = {}
    ledger = Ledger(state, keep_versions=True)
    span = Span(items[0].start, items[-1].start)
    ledger.begin(span)
    assert [ledger.observe(i) for i in items] == ["new"] * 6
    ledger = Ledger(state, keep_versions=True)  # the next run, from the saved state
    later = Span(items[2].start, items[-1].start)
    ledger.begin(later)
    assert len(ledger) == 4  # what starts before the span is forgotten
    assert ledger.observe(items[2]) is None
    unseen = ledger.unseen(later)
    assert [k.guid for k in unseen] == [i.guid for i in items[3:]]
    assert ledger.last_version(unseen[0]) == items[3]
    light = Ledger(state := {}, keep_versions=False)  # hard removals: no versions kept
    light.begin(span)
    light.observe(items[0])
    light.begin(span)  # a pass that does not see it
    assert light.last_version(light.unseen(span)[0]) is None
    soft = Ledger(state, keep_versions=True)  # then soft: the version is kept once seen
    soft.begin(span)
    assert soft.observe(items[0]) is None
    soft.begin(span)
    assert soft.last_version(soft.unseen(span)[0]) == items[0]


def test_a_backfill_between_two_instants_loads_exactly_that_range(
    tmp_path: Path, fake: FakeVccServer, dataset: Dataset, timeline: Timeline
) -> None:
    api = api_now(dataset, timeline)
    starts = sorted({row["start"] for row in api.values()})
    first, end = starts[10], starts[60]  # the end_value is excluded (dlt's default range)
    source = vcc_source(**credentials(fake), **FAST)
    source.interactions.apply_hints(
        incremental=dlt.sources.incremental("start", initial_value=first, end_value=end)
    )
    pipe = pipeline(tmp_path)
    pipe.run(source)
    wanted = {g: row for g, row in api.items() if first <= row["start"] < end}
    assert present(destination(tmp_path / "vcc.duckdb")) == wanted
    pipe.run(vcc_source(**credentials(fake), **FAST))  # then the rest, from since on
    assert present(destination(tmp_path / "vcc.duckdb")) == api
    assert loaded(pipe) == len(api) - len(wanted)


def test_importing_the_source_turns_dlt_telemetry_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt would send anonymous telemetry by default: importing vccasync.dlt turns it off,
    unless RUNTIME__DLTHUB_TELEMETRY says otherwise."""
    from dlt.common.configuration import resolve_configuration
    from dlt.common.configuration.specs import RuntimeConfiguration

    import vccasync.dlt

    monkeypatch.delenv("RUNTIME__DLTHUB_TELEMETRY")
    assert resolve_configuration(RuntimeConfiguration()).dlthub_telemetry is True  # dlt's default
    importlib.reload(vccasync.dlt)
    assert resolve_configuration(RuntimeConfiguration()).dlthub_telemetry is False
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "true")
    importlib.reload(vccasync.dlt)
    assert resolve_configuration(RuntimeConfiguration()).dlthub_telemetry is True
