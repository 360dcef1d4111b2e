"""Error pages a person can act on, in their language and styled like the public pages.

Django's handlers render 400.html, 403.html, 404.html and 500.html from config/templates/;
a failed CSRF check (an expired or blocked cookie) gets its own page with a way back.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Return 403 with a link that opens the same page again (a fresh form and CSRF cookie)."""
    return render(request, "403_csrf.html", {"retry_url": request.get_full_path()}, status=403)
