"""Where the project's data files live (label configs, protocols, taxonomies, configs)."""

from __future__ import annotations

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
ANNOTATION_DIR = PROJECT_DIR / "annotation"
BASELINES_DIR = PROJECT_DIR / "baselines"
