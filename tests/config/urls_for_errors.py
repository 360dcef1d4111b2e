"""The project's URLs plus views that fail, to see the error pages a person would get."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("odd")


urlpatterns = [
    path("test-crash/", crash),
    path("test-forbidden/", forbidden),
    path("test-suspicious/", suspicious),
    *project_urlpatterns,
]
