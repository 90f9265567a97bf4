"""Analyses: pure functions `(store, source_id, ...) -> polars DataFrame or dict` over the store."""
