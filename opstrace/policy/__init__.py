"""Tenant policy: limits and retention as each backend names them (`limits`); rule files
and Alertmanager configurations, read and checked (`rule_files`)."""
