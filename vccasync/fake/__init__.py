"""A fake VCC Interaction Content API on 127.0.0.1, for tests, benchmarks and demos."""

from vccasync.fake.app import STATS_KEY, FakeConfig, FakeStats, RequestRecord, build_app
from vccasync.fake.dataset import Dataset, DatasetSpec, Item, Query, SortKey, generate
from vccasync.fake.faults import ALL_KINDS, Fault, FaultConfig, FaultInjector
from vccasync.fake.paging import decode_token, encode_token
from vccasync.fake.server import FakeVccServer, running_in_thread

__all__ = [
    "ALL_KINDS",
    "STATS_KEY",
    "Dataset",
    "DatasetSpec",
    "FakeConfig",
    "FakeStats",
    "FakeVccServer",
    "Fault",
    "FaultConfig",
    "FaultInjector",
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
