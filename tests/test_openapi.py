"""The OpenAPI document: it lists exactly our routes, and a bounded fuzz of it finds no 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support import Server, running_server

from myspinbot.api.openapi import openapi_document

schema = schemathesis.openapi.from_dict(openapi_document())
TOKEN = "fuzz-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}

API_MD_ROUTES = {
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("POST", "/api/train"),
    ("POST", "/api/generate"),
    ("GET", "/api/status/{job_id}"),
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs/{job_id}/cancel"),
    ("GET", "/api/jobs/{job_id}/artifacts/{name}"),
}


def test_the_document_lists_every_api_md_route(server: Server, http) -> None:
    served = http.get("/docs/openapi.json", headers=BEARER).json()
    assert served == openapi_document()
    listed = {(m.upper(), p) for p, ops in served["paths"].items() for m in ops}
    assert listed == API_MD_ROUTES


def test_the_docs_page_uses_only_local_assets(http) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    with running_server(
        data,
        MYSPINBOT_MOCK_STEPS="1",
        MYSPINBOT_MOCK_STEP_SECONDS="0",
        MYSPINBOT_API_TOKEN=TOKEN,
        MYSPINBOT_AUTH_MAX_FAILURES="100000",
    ) as live:
        yield live


@pytest.fixture()
def base_url(server: Server) -> str:
    return server.url


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_fuzz_finds_no_server_error_and_no_response_outside_the_spec(case, base_url) -> None:
    # A schema-valid request may still be refused: a "lora" must name a *completed* training
    # job, which no schema can say. Every other check (no 5xx, documented statuses, bodies
    # and content types that match the document) applies.
    case.call_and_validate(
        base_url=base_url, headers=BEARER, excluded_checks=[positive_data_acceptance]
    )
