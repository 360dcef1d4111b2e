"""Property test over the whole OpenAPI schema: whatever a client sends, the API never answers 5xx.

Schemathesis generates requests from `/api/schema/` (valid and invalid bodies, paths and query
strings) and sends them to the WSGI app, authenticated with a CRM API key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from preferences.api_keys import crm_key_create
from tests.factories import ContactFactory, TopicFactory

# Django's own WSGI handler: config.wsgi would also run the production start-up checks, which the
# tests' settings (no webhook secret) do not pass, and which tests/test_startup_checks.py covers.
application = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
MAX_EXAMPLES = 15


@pytest.fixture
def wsgi_in_the_test_transaction() -> Iterator[None]:
    """Let the WSGI app use the test's connection, as Django's test client does (no close per request)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def crm_token(db, wsgi_in_the_test_transaction) -> str:
    TopicFactory(slug="saving")
    ContactFactory(external_id="crm-1", email="known@example.com")
    return crm_key_create(name="crm-fuzz", expires_in_days=30)[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_the_schema_allows_or_not_gets_a_server_error(case, crm_token):
    response = case.call(headers={"Authorization": f"Api-Key {crm_token}"})
    case.validate_response(response, checks=[not_a_server_error])
