"""`forget` on a warehouse held by another process (a running DAG task): one clear error, nothing changed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loyalist.audiences import privacy
from loyalist.audiences.forget import ForgetError, forget

from .builders import build_published, customer

HOLDER = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); time.sleep(60)"


def test_forget_waits_then_fails_clearly_when_the_warehouse_is_locked(settings):
    build_published(settings, [customer(1)], path=settings.warehouse_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.warehouse_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(ForgetError, match="is in use .* try again when it has finished"):
            forget(settings, customer_id=f"C{1:016x}", triggered_by="test", wait_s=1)
    finally:
        holder.kill()
        holder.wait()
    assert not privacy.audit_path(settings).exists()  # no suppression, no record: it did not happen
    report = forget(settings, customer_id=f"C{1:016x}", triggered_by="test")
    assert report.customers_found == 1 and report.rows_removed == {"marts.customers": 1, "marts.customer_segments": 1}
