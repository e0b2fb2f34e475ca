"""API authentication: ``Authorization: Bearer <api key>`` resolves to one tenant.

Every API view reads the tenant from ``request.user.tenant`` and scopes its queries to it;
there is no "current tenant" global.
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_authenticate


@dataclass(frozen=True)
class TenantPrincipal:
    """What ``request.user`` is for an API call: the tenant behind the key."""

    tenant: Tenant
    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword or not raw.strip():
            raise exceptions.AuthenticationFailed(
                "Use 'Authorization: Bearer <api key>'.", code="authentication_failed"
            )
        api_key = api_key_authenticate(raw=raw.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        if not api_key.tenant.active:
            raise exceptions.AuthenticationFailed(
                "This tenant is inactive.", code="tenant_inactive"
            )
        return TenantPrincipal(tenant=api_key.tenant, api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword  # makes DRF answer 401 (not 403) when credentials are missing


class IsTenant(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TenantPrincipal)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A tenant API key."}
