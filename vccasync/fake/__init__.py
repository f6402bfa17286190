"""A fake VCC Interaction Content API on 127.0.0.1, for tests, benchmarks and demos."""

from vccasync.fake._app import GATE_KEY, STATS_KEY, build_app
from vccasync.fake._config import FakeConfig
from vccasync.fake._dataset import Dataset, DatasetSpec, Item, Query, SortKey
from vccasync.fake._faults import ALL_KINDS, Fault, FaultConfig, FaultInjector
from vccasync.fake._gate import Gate
from vccasync.fake._generate import generate
from vccasync.fake._paging import decode_token, encode_token
from vccasync.fake._server import FakeVccServer, running_in_thread
from vccasync.fake._stats import FakeStats, RequestRecord

__all__ = [
    "ALL_KINDS",
    "GATE_KEY",
    "STATS_KEY",
    "Dataset",
    "DatasetSpec",
    "FakeConfig",
    "FakeStats",
    "FakeVccServer",
    "Fault",
    "FaultConfig",
    "FaultInjector",
    "Gate",
    "Item",
    "Query",
    "RequestRecord",
    "SortKey",
    "build_app",
    "decode_token",
    "encode_token",
    "generate",
    "running_in_thread",
]
