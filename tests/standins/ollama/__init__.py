"""An Ollama stand-in: `python -m tests.standins.ollama --port 0 --ready-file PATH [options]`.

Built from Ollama @ fb307609 (ollama/ollama, 2026-08-21: `server/routes.go`, `api/types.go`,
`docs/api.md`, `docs/api/errors.mdx`, `llm/llama_server.go`); the official Python client
(ollama-python 0.6.3) was run against it by hand: list, chat, streaming, structured output,
generate, ps and a 404 all parse. Binds 127.0.0.1, writes its port to the ready file once
listening, exits 0 on SIGTERM/SIGINT. Modules: `server.py` (routes), `decoding.py` (request
errors, `format`), `faults.py`, `app.py`, `__main__.py` (the command line). Options:

--port N              port to bind (0: any free one)
--ready-file PATH     written, atomically, with the port once the server accepts connections
--models m1,m2        installed models (default llama3.2); a name without a tag means `:latest`
--delay S             seconds before each streamed piece (default 0)
--reply TEXT          what the model answers (default: a one-sentence shot description); with
                      `format`, TEXT is used when it already satisfies the format, else JSON
                      built from the schema (TEXT fills its strings)
--version V           what /api/version reports (default 0.0.0, what an untagged build says)
--http-fault PATH=STATUS[:COUNT]   the next COUNT requests to PATH answer STATUS
--thinking m1,m2      models with the thinking capability: they stream `thinking` pieces
                      before the answer unless the call says `think: false`; a true `think`
                      to another model is 400 `"m" does not support thinking`

Every chat/generate call is recorded (`GET /_standin/state` -> `calls`: path, model and the
`keep_alive`, `think` and `format` it sent, "absent" when it sent none), so a test asserts
that the client gives the GPU back and turns thinking off. A string `keep_alive` must be a Go
duration ("5m", "0"): "300" is 400 `time: missing unit in duration "300"`, as Ollama says.

Routes: `GET`/`HEAD /` ("Ollama is running"), `/api/version`, `/api/tags`, `GET /api/ps`,
`POST /api/chat` and `/api/generate`: `stream` defaults to true (NDJSON pieces, then a final
`done: true` line with `done_reason` and the metrics in nanoseconds; `/api/generate`'s final
line adds `context`); `stream: false` is one object; an empty `messages`/`prompt` is the "load"
answer. Errors are `{"error": "..."}`: 400 `missing request body` or the JSON decoder's message,
400 `model is required` (chat), 404 `model 'x' not found` (the HEAD source's wording; older
servers said `model "x" not found, try pulling it first`), 500 for an invalid `format`.
Unknown paths are gin's `404 page not found`.

Faults, armed with `POST /_standin/fault/<kind>` (JSON body) while it runs:
- `http` {"path", "status", "count": 1, "message"}: the next matching requests get `status`
  with `{"error": message}` (503 defaults to Ollama's queue-full message).
- `stream_error` {"after": 1, "message", "count": 1}: after `after` pieces a `{"error": ...}`
  line ends the stream with HTTP 200 (docs/api/errors.mdx); with `after` 0, or without
  streaming, it is a 500 before anything is written, as `streamResponse` does.
- `stall` {"after": 1, "count": 1}: after `after` pieces nothing more is sent, the connection
  stays open, until `POST /_standin/fault/release` or shutdown.
- `clear`: all off, but what `--http-fault` armed.
- `GET /_standin/state`: what is armed, how many answers are stalled, which models are loaded.
"""
