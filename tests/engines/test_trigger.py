"""The trigger token: its form, and how a prompt gets it; the mock pipeline reports it too."""

from __future__ import annotations

from pathlib import Path

from support import running_server, train_files, wait_until

from myspinbot.jobs.pipelines.trigger import caption, trigger_token, with_trigger

JOB = "01JF3Z8K6QW2M4N5P7R9T3F9K2"


def test_the_token_is_the_name_and_the_jobs_random_tail() -> None:
    assert trigger_token("Alex", JOB) == "msb_alex_t3f9k2"
    assert trigger_token("Zoë O'Brien-Smith", JOB) == "msb_zoe_o_brien_smith_t3f9k2"
    assert trigger_token("", JOB) == trigger_token(None, JOB) == "msb_person_t3f9k2"
    assert trigger_token("漢字", JOB) == "msb_person_t3f9k2"
    assert len(trigger_token("x" * 200, JOB)) == len("msb_") + 24 + len("_t3f9k2")
    # Stable per job, different across jobs of the same name.
    assert trigger_token("Alex", JOB) == trigger_token("Alex", JOB)
    assert trigger_token("Alex", JOB[:-1] + "3") != trigger_token("Alex", JOB)


def test_the_token_leads_captions_and_prompts_once() -> None:
    token = "msb_alex_t3f9k2"
    assert caption(token, "Alex") == f"{token}, a photo of Alex"
    assert with_trigger("waving", token) == f"{token}, waving"
    assert with_trigger(f"{token} waving", token) == f"{token} waving"
    assert with_trigger(f"{token}q waving", token).startswith(f"{token}, ")
    assert with_trigger("waving", None) == "waving"


def test_the_mock_training_result_says_trigger_samples_and_steps(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server, server.client() as http:
        job = http.post("/api/train", files=train_files(3), data={"name": "Alex"}).json()
        done = wait_until(
            lambda: (lambda j: j if j["state"] == "completed" else None)(
                http.get(f"/api/status/{job['id']}").json()
            ),
            60,
            "the mock training job",
        )
    result = done["result"]
    assert result["trigger"] == trigger_token("Alex", job["id"])
    assert result["samples"] == 3 and result["steps"] == 5  # MYSPINBOT_MOCK_STEPS of the tests
