"""Feature engineering: point-in-time correct order features into gold/order_features."""
