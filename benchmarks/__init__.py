"""`make bench`: speed, memory and cost growth of the daily pipeline against a floor scan and pandas/polars."""
