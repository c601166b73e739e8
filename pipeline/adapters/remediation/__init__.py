"""Remediation at the edges: state stores and the executors of the action catalogue."""
