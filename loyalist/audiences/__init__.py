"""Marketing audiences and privacy: definitions, safe queries, platform exports, suppression, erasure."""
