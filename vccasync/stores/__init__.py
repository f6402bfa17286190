"""Where interactions are kept: checkpoint (pure), JSONL, SQLite, PostgreSQL."""
