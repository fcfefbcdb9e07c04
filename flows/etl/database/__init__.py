"""The database ingest (`flows/etl/database_ingest.py`): a PostgreSQL table by watermark."""
