"""Names shared with the DAG files, importable at DAG parse time (no pandas, no YAML parsing)."""

from __future__ import annotations

import os
from pathlib import Path

from loyalist.config import PROJECT_ROOT
from loyalist.contracts import CONSENT_CHANNELS

# Definitions live in the repo's audiences/ folder; LOYALIST_AUDIENCES_DIR points elsewhere.
AUDIENCES_DIR = Path(os.environ.get("LOYALIST_AUDIENCES_DIR", PROJECT_ROOT / "audiences")).resolve()
# Marketing channels; each is a consent column marts.customers.consent_<channel> and needs a contact.
CHANNELS = CONSENT_CHANNELS  # the input contract's consent channels
FORMATS = ("csv", "parquet", "google_ads", "meta", "mailchimp")
# Platform formats contact people by one channel; that channel's consent is the one that counts.
FORMAT_CHANNEL = {"google_ads": "ads", "meta": "ads", "mailchimp": "email"}


def audience_names() -> list[str]:
    """Names of the definition files (a directory listing, cheap enough for the DAG's trigger form)."""
    return sorted(p.stem for p in AUDIENCES_DIR.glob("*.yml"))
