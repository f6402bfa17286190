"""The fake server's shared state, kept on its aiohttp application."""

from __future__ import annotations

from typing import Final

import attrs
from aiohttp import web

from vccasync.fake._auth import TokenStore
from vccasync.fake._config import FakeConfig
from vccasync.fake._dataset import Dataset
from vccasync.fake._faults import FaultInjector
from vccasync.fake._gate import Gate
from vccasync.fake._limits import SlidingWindow
from vccasync.fake._stats import FakeStats

__all__ = ["GATE_KEY", "STATE_KEY", "STATS_KEY", "State"]


@attrs.define
class State:
    """Everything a handler may read or count."""

    dataset: Dataset
    config: FakeConfig
    stats: FakeStats
    tokens: TokenStore
    faults: FaultInjector
    token_faults: FaultInjector
    limiter: SlidingWindow | None
    gate: Gate

    @classmethod
    def build(cls, dataset: Dataset, config: FakeConfig) -> State:
        """Fresh state for a server of ``dataset`` behaving as ``config``."""
        limit = config.rate_limit_per_minute
        return cls(
            dataset=dataset,
            config=config,
            stats=FakeStats(),
            tokens=TokenStore(config.token_ttl),
            faults=FaultInjector(config.faults),
            token_faults=FaultInjector(attrs.evolve(config.faults, seed=config.faults.seed + 1)),
            limiter=None if limit is None else SlidingWindow(limit, config.rate_limit_window),
            gate=Gate(config.hold_after),
        )


STATS_KEY: Final = web.AppKey("vcc_fake_stats", FakeStats)
GATE_KEY: Final = web.AppKey("vcc_fake_gate", Gate)
STATE_KEY: Final = web.AppKey("vcc_fake_state", State)
