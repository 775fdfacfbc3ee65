"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .. import __version__
from ..runtime import Runtime
from . import catalog, errors, events, grants, hygiene, schemas, statements, workflows
from .edge import RejectNulInUrl


def create_app(runtime: Runtime, *, no_auth: bool = False, manage_runtime: bool = True) -> FastAPI:
    """The HTTP API over ``runtime``; with ``manage_runtime`` the app starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                runtime.stop()

    app = FastAPI(
        title="sqltide",
        version=__version__,
        summary="Run warehouse SQL asynchronously, durably and event-driven.",
        lifespan=lifespan,
        telemetry={
            "tracing": runtime.settings.opentelemetry,
            "metrics": runtime.settings.opentelemetry,
            "logs": runtime.settings.opentelemetry,
        },
    )
    app.state.runtime = runtime
    app.state.no_auth = no_auth
    errors.install(app)
    settings = runtime.settings
    app.add_middleware(
        errors.BodyLimit,
        limit=settings.max_body_bytes,
        # A Data API batch of the most statements of the largest size, and room for the rest.
        data_api_limit=max(
            settings.max_body_bytes,
            settings.max_batch_statements * settings.max_sql_bytes + 64 * 1024,
        ),
    )
    app.add_middleware(RejectNulInUrl)
    hygiene.install(app, body_timeout=runtime.settings.http_body_timeout_seconds)
    app.include_router(statements.router)
    app.include_router(catalog.router)
    app.include_router(events.router)
    app.include_router(grants.router)
    app.include_router(workflows.router)
    # The Amazon Redshift Data API (AWS JSON 1.1) on the same port: POST / with X-Amz-Target.
    from ..dataapi.protocol import mount

    mount(app)
    # The Lambda durable execution API (REST JSON under /2025-12-01/): unchanged AWS durable
    # functions checkpoint here (sqltide.lambda_durable).
    from ..lambda_durable.routes import mount as mount_lambda_durable

    mount_lambda_durable(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # built once, then kept by FastAPI
            app.openapi_schema = schemas.add_described_models(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/health", tags=["service"], summary="Liveness")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    return app
