"""The data quality monitor: GX suites, freshness, volume and drift for every catalog table."""
