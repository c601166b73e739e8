"""Insights reports: ``report.html`` (self-contained, inline SVG plots) and ``report.md``."""
