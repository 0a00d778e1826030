"""Extractors that pull operational source systems into the landing zone (then ingested like any file)."""
