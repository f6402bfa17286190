"""The HTTP layer: the one request core (``session``), OAuth2 tokens per scope (``auth``) and
the adaptive request budget (``ratelimit``)."""
