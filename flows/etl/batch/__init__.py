"""Batch processing (`flows/etl/batch_processing.py`): day batches scored as mapped tasks."""
