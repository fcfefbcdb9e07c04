"""Sales anomaly report: robust outliers in silver/orders, published to gold after approval."""
