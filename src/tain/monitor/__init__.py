"""Monitoring: statistics, Prometheus metrics and alert rules with their deliveries."""
