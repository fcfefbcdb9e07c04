"""The S3 data pipeline (`flows/etl/s3_data_pipeline.py`): landing files into every layer."""
