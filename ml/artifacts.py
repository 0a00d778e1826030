"""Model artifacts on disk and the promotion pointer.

Layout of ``models_dir``::

    <version>/churn.skops   the fitted churn model (skops, never pickle)
    <version>/churn.json    metadata: features, cutoffs and label windows, metrics, library versions,
                            data fingerprint (sha256 of the training frame)
    <version>/clv.json      CLV parameters (plain numbers) and the same kind of metadata
    promoted.json           {"churn": {"version": ..., ...}, "clv": {"version": ..., ...}}

Loading a churn model first lists the types skops would have to trust (``get_untrusted_types``) and
refuses anything outside ALLOWED_TYPES, the types our own pipeline consists of.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import skops.io as sio

log = logging.getLogger(__name__)

POINTER = "promoted.json"
KINDS = ("churn", "clv")

# The types skops does not trust by default that a model from ml.churn.fit contains (measured with
# get_untrusted_types on a saved model). Anything else in a file is refused (tampered or foreign).
ALLOWED_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
})


class UntrustedArtifactError(RuntimeError):
    """The artifact contains types outside ALLOWED_TYPES."""


def library_versions() -> dict[str, str]:
    import duckdb
    import numpy
    import scipy
    import sklearn
    import skops

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "skops": skops.__version__,
            "numpy": numpy.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
            "duckdb": duckdb.__version__}


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the frame's column names and row hashes (order-sensitive)."""
    h = hashlib.sha256()
    h.update("|".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def code_fingerprint() -> str:
    """sha256 of the ml package's source files: a code change makes a new model version."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def model_version(as_of: date, *parts: str) -> str:
    """Deterministic version: the as-of date plus a short hash of what determines the model."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:10]
    return f"{as_of:%Y%m%d}-{digest}"


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_churn(models_dir: Path, version: str, model, metadata: dict) -> Path:
    folder = models_dir / version
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "churn.skops"
    tmp = folder / "churn.skops.tmp"
    sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)
    _write_json(folder / "churn.json", {**metadata, "artifact": path.name, "libraries": library_versions()})
    return path


def load_churn(models_dir: Path, version: str):
    """(model, metadata) of a saved churn model, refusing types outside ALLOWED_TYPES."""
    folder = models_dir / version
    path = folder / "churn.skops"
    untrusted = sio.get_untrusted_types(file=path)
    unknown = sorted(set(untrusted) - ALLOWED_TYPES)
    if unknown:
        raise UntrustedArtifactError(f"{path} contains types outside the allowed list: {unknown}")
    model = sio.load(path, trusted=untrusted)
    metadata = json.loads((folder / "churn.json").read_text(encoding="utf-8"))
    return model, metadata


def save_clv(models_dir: Path, version: str, payload: dict) -> Path:
    path = models_dir / version / "clv.json"
    _write_json(path, {**payload, "libraries": library_versions()})
    return path


def load_clv(models_dir: Path, version: str) -> dict:
    return json.loads((models_dir / version / "clv.json").read_text(encoding="utf-8"))


def read_pointer(models_dir: Path) -> dict:
    path = models_dir / POINTER
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def promote(models_dir: Path, kind: str, version: str, details: dict) -> None:
    """Point ``kind`` at ``version`` (atomic rewrite of promoted.json)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    pointer = read_pointer(models_dir)
    pointer[kind] = {"version": version, "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     **details}
    _write_json(models_dir / POINTER, pointer)
    log.info("promoted %s model %s", kind, version)
