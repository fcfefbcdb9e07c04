"""The AWS integration example: its flow, a local AWS endpoint, and its pure helpers."""
