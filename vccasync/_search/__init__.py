"""The search: windows fetched concurrently within one budget (``fanout``, the public face,
and ``search_run``, which wires ``scheduler``, ``buffers``, each window's ``chain`` of pages,
the ``split_decision`` and the ``order_watch``), with its pure helpers: the order check and
repair (``order``), pacing of dense windows (``pacing``) and the day's shape it learns
(``profile``)."""

from .fanout import InteractionSearch

__all__ = ["InteractionSearch"]
