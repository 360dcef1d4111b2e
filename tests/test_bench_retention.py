"""The retention benchmark runs end to end at a small size: history generated in the server, pruned, totals kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_retention_benchmark_prunes_a_generated_history_and_keeps_the_monthly_totals(tmp_path: Path) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the history is generated with PostgreSQL's generate_series")
    s = connection.settings_dict
    name = f"cadence_retention_test_{uuid.uuid4().hex[:8]}"
    url = f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name}"
    env = {**os.environ, "RETENTION_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    try:
        run = subprocess.run(
            [sys.executable, "-m", "bench", "retention", "--rows", "3000", "--contacts", "300", "--due", "100"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        import psycopg

        with psycopg.connect(
            host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"] or "postgres", dbname="postgres",
            password=s.get("PASSWORD") or None, autocommit=True,
        ) as admin:  # fmt: skip
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout[run.stdout.index("{\n") :])
    assert figures["before"]["deliveries"] == 3000
    assert figures["before"]["events"] == 600
    # Two years spread evenly, 400 days kept: roughly 45% is older and goes, in bounded runs.
    assert 1000 < figures["all_runs"]["deliveries"] < 1700
    # The claim before pruning added one new delivery per due schedule; those are young and stay.
    assert figures["after"]["deliveries"] == 3000 + 100 - figures["all_runs"]["deliveries"]
    assert figures["totals_kept"] is True
    assert figures["claim_before"]["claimed"] == figures["claim_after"]["claimed"] == 100
