"""The OpenAPI document tells the truth: it lists exactly our routes, and says what they answer.

Schemathesis runs every phase on it against a live server (examples, coverage and fuzzing
per operation, then stateful sequences that follow the Location of what was created) with
every check it has: no 5xx, only documented statuses, headers and content types, bodies
that match the schema of their media type, schema-valid requests accepted and invalid ones
refused. The server judges uploaded files by their content, so the upload's media types get
real files; and a schema-valid `lora` id is only accepted when it names a completed train
job, so every one the fuzzer draws is pointed at such a job before it is sent.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import schemathesis.engine
from hypothesis import strategies as st
from PIL import Image
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.engine import Status, events
from schemathesis.engine.run import PhaseName
from schemathesis.transport.serialization import Binary
from support import ROOT, Server, running_server, train_files, wait_until, wav_bytes

from myspinbot.api.jobs import IDEMPOTENCY_KEY, JOB_ID_PATTERN
from myspinbot.api.openapi import openapi_document

TOKEN = "fuzz-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
JOB_ID = re.compile(JOB_ID_PATTERN)
FRESH = itertools.count()
# What `st run --checks all` would read from a schemathesis.toml. The server ignores headers
# and JSON properties it does not know, so an extra one is no violation (unknown query
# parameters are refused: test_bad_input covers those).
SCHEMATHESIS = SchemathesisConfig.from_str(
    f"""
seed = 2026
workers = 1

[auth.openapi.bearer]
bearer = "{TOKEN}"

[generation]
max-examples = 25
deterministic = true
allow-extra-parameters = false
with-security-parameters = false

[phases.examples]
enabled = true
[phases.coverage]
enabled = true
[phases.fuzzing]
enabled = true
[phases.stateful]
enabled = true
"""
)


def image_bytes(kind: str, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format=kind)
    return buffer.getvalue()


for media_type, kind in (("image/png", "PNG"), ("image/jpeg", "JPEG"), ("image/webp", "WEBP")):
    schemathesis.openapi.media_type(
        media_type, st.sampled_from([image_bytes(kind, (9, 80, 200)), image_bytes(kind, (0, 0, 0))])
    )
schemathesis.openapi.media_type("audio/wav", st.just(wav_bytes()))


def readme_routes() -> set[tuple[str, str]]:
    """The HTTP API table of docs/api.md, as (method, OpenAPI path) pairs."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("\n## HTTP API", 1)[1].split("\n## ", 1)[0]
    routes = set()
    for cell in re.findall(r"^\| (`[A-Z]+ /[^|]*)\|", section, re.M):
        for method, path in re.findall(r"`([A-Z]+) (/[^`]*)`", cell):
            routes.add((method, re.sub(r"<\w+>", "{}", path)))
    return routes


def test_the_document_lists_every_json_route_of_the_readme(server: Server, http) -> None:
    served = http.get("/docs/openapi.json", headers=BEARER).json()
    assert served == openapi_document()
    listed = {
        (method.upper(), re.sub(r"\{\w+\}", "{}", path))
        for path, operations in served["paths"].items()
        for method in operations
    }
    pages = {("GET", "/"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
    pages |= {("GET", "/docs"), ("GET", "/docs/openapi.json"), ("GET", "/favicon.ico")}
    assert listed == readme_routes() - pages
    assert len(listed) == 9


def test_the_document_follows_the_server_s_upload_limits(tmp_path) -> None:
    with (
        running_server(tmp_path / "data", MYSPINBOT_MAX_IMAGES="3") as live,
        live.client() as http,
    ):
        served = http.get("/docs/openapi.json").json()
    body = served["paths"]["/api/train"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["images"]["maxItems"] == 3


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


@pytest.fixture(scope="module")
def trained(server: Server) -> str:
    """The id of a completed train job: what a well-formed `lora` must name to be accepted."""
    with server.client(headers=BEARER) as http:
        job = http.post("/api/train", files=train_files(1)).json()

        def completed() -> bool:
            return http.get(f"/api/status/{job['id']}").json()["state"] == "completed"

        wait_until(completed, message="the training job to complete")
    return job["id"]


def prepare(case: Any, trained: str) -> None:
    """Make a drawn request mean what its draw meant.

    A ULID-shaped `lora` is well formed: make it name a job that exists and completed.
    Schemathesis draws a media-typed array property as one bare file, which it then sends
    without a file name (so as a text field): send it as the one-file array it stands for.
    And a well-formed Idempotency-Key is made unique: drawn again for another case, it
    would replay the first job (202, whatever the body), which is that header's purpose.
    """
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.match(key):
        case.headers["Idempotency-Key"] = f"{key[:150]}.{next(FRESH)}"
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("lora"), str) and JOB_ID.match(body["lora"]):
        body["lora"] = trained
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if positive and isinstance(body.get("images"), bytes | Binary):
        body["images"] = [body["images"]]


def is_valid_upload(body: Any) -> bool:
    """Whether a drawn training body is one the server must accept: real files, a text name.

    Fields the form does not have are sent as text, which the server ignores.
    """
    if not isinstance(body, dict) or not set(body) >= {"images", "voice"}:
        return False
    images, voice, name = body["images"], body["voice"], body.get("name", "")
    if not isinstance(images, list) or not 1 <= len(images) <= 50 or not isinstance(name, str):
        return False
    return all(sniffed(image) in IMAGE_MAGIC for image in images) and sniffed(voice) == "WAV"


IMAGE_MAGIC = {"PNG", "JPEG", "WEBP"}


def sniffed(value: Any) -> str | None:
    data = value.data if isinstance(value, Binary) else value
    if not isinstance(data, bytes):
        return None
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF":
        return {b"WEBP": "WEBP", b"WAVE": "WAV"}.get(data[8:12])
    return None


def failures_of(recorder: Any) -> list[str]:
    found = {}
    for checks in recorder.checks.values():
        for check in checks:
            if check.failure_info is not None:
                failure = check.failure_info.failure
                text = f"{failure.operation}: {failure.title}: {failure.message}"
                found[text] = f"{text}\n    {check.failure_info.code_sample[:600]}"
    return list(found.values())


def run_schemathesis(base_url: str, trained: str) -> list[str]:
    """Every phase and every check, as `st run --checks all` runs them; the problems found."""
    fuzzed = schemathesis.openapi.from_dict(openapi_document(), config=SCHEMATHESIS)
    fuzzed.config.update(base_url=base_url)

    @fuzzed.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        # Schemathesis marks some multipart bodies negative that are valid on the wire (its
        # negative mode leaves files with an encoding alone, then mutates nothing visible):
        # the server is right to accept those, so judge the upload that was really sent.
        accepted = isinstance(failure, AcceptedNegativeData)
        return not (accepted and case.path == "/api/train" and is_valid_upload(case.body))

    def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        prepare(case, trained)

    problems, phases = [], {}
    schemathesis.hook(before_call)  # a hook schemathesis only takes globally
    try:
        for event in schemathesis.engine.from_schema(fuzzed).execute():
            if isinstance(event, events.PhaseFinished):
                phases[event.phase.name] = event.status
            elif isinstance(event, events.NonFatalError):
                problems.append(f"error in {event.label}: {event.value!r}")
            elif isinstance(event, events.FatalError):
                problems.append(f"fatal error: {event.exception!r}")
            elif isinstance(event, events.ScenarioFinished):
                problems += failures_of(event.recorder)
            elif isinstance(event, events.EngineFinished):
                problems += [f"{f.operation}: {f.title}: {f.message}" for f in event.failures]
    finally:
        schemathesis.hooks.GLOBAL_HOOK_DISPATCHER.unregister(before_call)
    # The document has no examples, so that phase has nothing to run; the others must run.
    ran = (PhaseName.COVERAGE, PhaseName.FUZZING, PhaseName.STATEFUL_TESTING)
    assert all(phases.get(phase) in (Status.SUCCESS, Status.FAILURE) for phase in ran), phases
    return problems


def test_every_phase_and_check_of_schemathesis_finds_no_disagreement(
    server: Server, trained: str
) -> None:
    problems = run_schemathesis(server.url, trained)
    assert not problems, "\n".join(problems)
