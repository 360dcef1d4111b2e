from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_documents_the_signup(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/subscribe/"]["post"]
    assert "202" in operation["responses"]
    request = schema["components"]["schemas"]["SubscribeRequest"]
    assert sorted(request["required"]) == ["email", "topics"]
    assert set(request["properties"]) == {"email", "first_name", "locale", "topics", "frequency", "source"}


def test_the_api_docs_load_without_any_outside_host(client):
    body = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in body
    assert "cdn." not in body and "jsdelivr" not in body
