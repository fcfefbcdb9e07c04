"""Pipeline health: run statistics from the Prefect API and rows written from the Delta log."""
