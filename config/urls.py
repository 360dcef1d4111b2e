from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cadence.insights.views import dashboard_view
from cadence.ops import probes
from cadence.ops import views as ops_views
from preferences import api as preferences_api
from preferences import crm_api
from preferences import views as preferences_views

urlpatterns = [
    path("subscribe/", preferences_views.signup, name="signup"),
    path("confirm/<str:token>/", preferences_views.confirm, name="confirm"),
    path("preferences/<str:token>/", preferences_views.preference_centre, name="preference-centre"),
    path("unsubscribe/<str:token>/", preferences_views.unsubscribe, name="unsubscribe"),
    # RFC 8058 one-click POSTs to the exact URL of the header; a redirect would turn them into GETs.
    path("unsubscribe/<str:token>", preferences_views.unsubscribe, name="unsubscribe-no-slash"),
    path("link/", preferences_views.link_request, name="link-request"),
    path("dossier/<str:token>/", preferences_views.dossier, name="dossier"),
    path("api/v1/subscribe/", preferences_api.SubscribeView.as_view(), name="api-subscribe"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("anymail/", include("messaging.webhooks")),
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    # The former single probe: every check of PROBE_CHECKS, with the same rules for details.
    path("probes", probes.readyz, {"default_role": "all"}, name="probes"),
    path("metrics", ops_views.metrics_view, name="metrics"),
    path("admin/ops/", admin.site.admin_view(ops_views.ops_page), name="admin-ops"),
    path("admin/ops/retry/<uuid:delivery_id>/", admin.site.admin_view(ops_views.ops_retry), name="admin-ops-retry"),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("api/v1/contacts/", crm_api.ContactListView.as_view(), name="api-contacts"),
    path("api/v1/contacts/bulk/", crm_api.ContactBulkUpsertView.as_view(), name="api-contacts-bulk"),
    path("api/v1/contacts/<str:external_id>/", crm_api.ContactDetailView.as_view(), name="api-contact-detail"),
    path("admin/", admin.site.urls),
]
