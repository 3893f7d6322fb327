"""Request-scoped values the routes depend on: the site and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tain.service.auth import Principal, authenticate
from tain.service.site import Site


def get_site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def get_principal(request: Request) -> Principal:
    site = get_site(request)
    principal: Principal = authenticate(
        site.catalog, request.headers.get("authorization"), site.clock()
    )
    request.state.principal = principal
    return principal


SiteDep = Annotated[Site, Depends(get_site)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
