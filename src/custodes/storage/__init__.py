"""Adapters that implement the core ports: SQL (SQLite, PostgreSQL), Parquet, buses."""
