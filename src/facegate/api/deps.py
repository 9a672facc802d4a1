"""Per-request dependencies: the caller's tenant (authenticated, rate-limited) and the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from facegate.errors import RateLimited
from facegate.service.common import Tenant
from facegate.service.container import Services

API_KEY_HEADER = "x-api-key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="your facegate API key")


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def current_tenant(
    request: Request, api_key: Annotated[str | None, Depends(_api_key)]
) -> Tenant:
    services = services_of(request)
    # The key lookup and the count (a write to the shared store) run off the event loop, in one
    # trip to the thread pool: each trip costs the request two turns of the loop, which under
    # overload take tens of milliseconds each (BENCHMARKS.md, Overload).
    tenant, refusal = await run_in_threadpool(_authenticate_and_count, services, api_key)
    # For the request log: who asked (the key's public id, never its secret).
    request.state.key_id = tenant.key_id
    if refusal is not None:
        raise refusal
    return tenant


def _authenticate_and_count(
    services: Services, api_key: str | None
) -> tuple[Tenant, RateLimited | None]:
    tenant = services.keys.authenticate(api_key)
    try:
        services.rate_limiter.take(tenant.key_id)
    except RateLimited as refused:
        return tenant, refused
    return tenant, None


TenantDep = Annotated[Tenant, Depends(current_tenant)]
ServicesDep = Annotated[Services, Depends(services_of)]
