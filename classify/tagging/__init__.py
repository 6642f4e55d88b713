"""Tagging: the row contract, the local, multi-process and Ray engines, and run summaries."""
