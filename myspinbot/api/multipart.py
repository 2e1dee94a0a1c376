"""A streaming multipart/form-data reader: parts go straight to disk, limits cut the stream."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import BadRequest, MySpinBotError
from .text_limits import too_long

MAX_TEXT_FIELD = 4096  # bytes kept of a text field that has no limit of its own
UTF8_MAX = 4  # bytes per character at most


@dataclass
class FilePart:
    field: str
    filename: str
    path: Path
    size: int = 0


@dataclass
class Form:
    files: list[FilePart] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


# Called with (field name, size so far, parts of that field so far) before bytes are kept;
# raises to stop the upload.
LimitCheck = Callable[[str, int, int], None]


class StreamingForm:
    """Feed body chunks with write(); files land in `folder` under server-made names."""

    def __init__(
        self,
        boundary: bytes,
        folder: Path,
        check: LimitCheck,
        text_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.folder = folder
        self.check = check
        self.text_limits = text_limits or {}  # characters per text field
        self.form = Form()
        self._headers: dict[str, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._file: IO[bytes] | None = None
        self._part: FilePart | None = None
        self._text: bytearray | None = None
        self._text_name = ""
        self._error: MySpinBotError | None = None
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._on_field,
                "on_header_value": self._on_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MySpinBotError:
            raise
        except Exception as exc:  # the parser's own errors: malformed body
            raise BadRequest(f"malformed multipart body: {exc}", code="malformed_body") from None
        finally:
            if self._error is not None:
                self.close()
        if self._error is not None:
            raise self._error

    def finish(self) -> Form:
        self._parser.finalize()
        if not self._ended or self._part is not None or self._text is not None:
            raise BadRequest(
                "the multipart body is incomplete (no closing boundary)", code="malformed_body"
            )
        return self.form

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _end(self) -> None:
        self._ended = True

    def _begin(self) -> None:
        self._headers = {}

    def _on_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self._text, self._text_name = bytearray(), name
            return
        count = sum(1 for part in self.form.files if part.field == name)
        self.check(name, 0, count + 1)
        path = self.folder / f"part-{len(self.form.files):03d}"
        self._part = FilePart(name, filename.decode("utf-8", "replace"), path)
        self._file = path.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._error is not None:
            return
        try:
            if self._text is not None:
                self._text += data[start:end]
                self._check_text()
                return
            assert self._part is not None and self._file is not None
            self._part.size += end - start
            count = sum(1 for part in self.form.files if part.field == self._part.field) + 1
            self.check(self._part.field, self._part.size, count)
            self._file.write(data[start:end])
        except MySpinBotError as exc:
            self._error = exc

    def _check_text(self) -> None:
        """Bound what a text field can hold while it streams; its own limit is checked later."""
        assert self._text is not None
        limit = self.text_limits.get(self._text_name)
        if limit is not None and len(self._text) > UTF8_MAX * limit:
            raise too_long(self._text_name, limit)  # more bytes than that many characters hold
        if limit is None and len(self._text) > MAX_TEXT_FIELD:
            raise too_long(self._text_name, MAX_TEXT_FIELD, "bytes")

    def _part_end(self) -> None:
        if self._text is not None:
            self.form.fields[self._text_name] = self._text.decode("utf-8", "replace")
            self._text = None
            return
        self.close()
        if self._part is not None:
            self.form.files.append(self._part)
            self._part = None


def boundary_of(content_type: str) -> bytes | None:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        return None
    return options.get(b"boundary") or None
