"""The raw-event archive: hourly Parquet files listed in the ``raw_event_files`` manifest
(``parquet_archive``), read back with DuckDB (``duckdb_reader``)."""
