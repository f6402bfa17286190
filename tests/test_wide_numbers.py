"""Addresses sent as JSON numbers of 16 to 25 digits keep every digit through the client, on the
search and the get-one paths, with orjson and with the standard library (the fake on loopback).
"""

from __future__ import annotations

from datetime import timedelta

from vccasync import to_api
from vccasync.fake import DatasetSpec, FakeVccServer, generate

from .conftest import api_shape, client_for

# floats keep about 16 significant digits; beyond 64 bits orjson itself reads a float
WIDE = [
    1234567890123456789012345,
    18446744073709551616,
    9999999999999999999,
    123456789012345678,
    12345678901234567,
    9007199254740993,
]


async def test_wide_addresses_keep_every_digit(decoder: str) -> None:
    dataset = generate(DatasetSpec(seed=5, days=1, per_day=60, edge_every=None))
    dataset.addresses = tuple(WIDE[n % len(WIDE)] for n in range(len(dataset.addresses)))
    expected = [api_shape(item) for item in dataset.visible()]
    start = dataset.spec.start
    async with FakeVccServer(dataset) as fake, client_for(fake) as vcc:
        found = [i async for i in vcc.interactions(start, start + timedelta(days=1))]
        assert [to_api(item) for item in found] == expected
        addresses = {item.connect_from for item in found} | {item.connect_to for item in found}
        assert addresses == {str(n) for n in WIDE}  # every width is on the search path
        for number in map(str, WIDE):  # and on the get-one path
            first = next(i for i in found if number in (i.connect_from, i.connect_to))
            assert await vcc.interaction(first.guid) == first
