"""GDPR erasure of one subject everywhere the lake put their data, with evidence."""
