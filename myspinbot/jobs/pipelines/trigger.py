"""The trigger token: the word a LoRA learns its person by, and how a prompt invokes it.

Every caption a training job writes starts with the token, so the LoRA ties the person to
it; a generate job with that LoRA puts the token in front of the text ComfyUI encodes
(after Ollama wrote the shot, so no model has to remember it).

The token is `msb_<name>_<tag>`: the name as lowercase ASCII letters, digits and `_`, and
`<tag>` the last six characters of the job's id (a ULID, whose last 16 characters are
random). It is stable (the same job always gets the same token, on every attempt and
every server) and unique in practice: two trainings share one only if their names match
and 30 random bits agree. The `msb_` prefix and the tag keep it out of the text encoder's
ordinary vocabulary, so it does not pull in what the base model knows about "alex".
"""

from __future__ import annotations

import re
import unicodedata

PREFIX = "msb_"
NAME_CHARS = 24
TAG_CHARS = 6


def trigger_token(name: str | None, job_id: str) -> str:
    """`msb_<name>_<tag>` for the training job `job_id` (see the module doc)."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:NAME_CHARS].strip("_")
    tag = job_id[-TAG_CHARS:].lower()
    return f"{PREFIX}{slug or 'person'}_{tag}"


def caption(token: str, name: str | None) -> str:
    """The caption of one training photo: the token first, as trainers caption datasets."""
    shown = (name or "").strip()
    return f"{token}, a photo of {shown}" if shown else f"{token}, a photo of a person"


def with_trigger(prompt: str, token: str | None) -> str:
    """The prompt as ComfyUI should encode it: the token in front, once."""
    if not token or re.search(rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])", prompt):
        return prompt
    return f"{token}, {prompt}"
