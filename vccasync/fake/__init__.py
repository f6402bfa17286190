"""A fake VCC Interaction Content API on 127.0.0.1, for tests, benchmarks and demos."""

from vccasync.fake.app import GATE_KEY, STATS_KEY, build_app
from vccasync.fake.config import FakeConfig
from vccasync.fake.dataset import Dataset, DatasetSpec, Item, Query, SortKey
from vccasync.fake.faults import ALL_KINDS, Fault, FaultConfig, FaultInjector
from vccasync.fake.gate import Gate
from vccasync.fake.generate import generate
from vccasync.fake.paging import decode_token, encode_token
from vccasync.fake.server import FakeVccServer, running_in_thread
from vccasync.fake.stats import FakeStats, RequestRecord

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
