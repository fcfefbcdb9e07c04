"""The API ingest (`flows/etl/api_ingest.py`): a paginated JSON API, resumable."""
