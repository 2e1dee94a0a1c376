"""Keep credentials out of logs and messages: URLs shown without user:pass@ or ?token=."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry credentials in the reverse proxies people put in front of
# ComfyUI and Ollama (RunPod-style ?token=, ai-dock's, API gateways' ?key= ...).
SECRET_QUERY_KEYS = frozenset(
    {"token", "access_token", "api_key", "apikey", "key", "auth", "password", "secret", "sig"}
)
HIDDEN = "***"


def safe_url(url: str) -> str:
    """The URL with its user info and secret query values replaced by ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{HIDDEN}@{netloc.rsplit('@', 1)[1]}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, HIDDEN if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs],
                safe="*",
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL (password, user, token values), to scrub from any text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [value for value in (parts.password, parts.username) if value]
    found += [
        value
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() in SECRET_QUERY_KEYS and value
    ]
    return found


def scrub(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """The text with every occurrence of every secret replaced by ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
