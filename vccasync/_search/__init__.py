"""The search: windows fetched concurrently within one budget (``fanout``), with its pure
helpers: the order check and repair (``order``), pacing of dense windows (``pacing``) and the
day's shape it learns (``profile``)."""

from .fanout import InteractionSearch

__all__ = ["InteractionSearch"]
