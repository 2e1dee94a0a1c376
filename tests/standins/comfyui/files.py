"""`POST /upload/image`, `GET /view` and `GET /view_metadata/{folder}`, as ComfyUI's `server.py`.

Follows ComfyUI 0.3.64 (Comfy-Org/ComfyUI@a125cd84): an upload keeps the part's file name,
reuses a same-named file with the same content and otherwise renames to `name (1).ext` unless
`overwrite` is "true"/"1"; an unknown `type` is a 500 (an unbound local upstream); escaping the
folder is 400. `/view`: 400 for a leading `/` or `..`, 403 for a subfolder that escapes, 404
when missing, the type guessed from the extension (HTML, JS and CSS as octet-stream) and
`Content-Disposition: filename="..."`. 2026 (Comfy-Org/ComfyUI@5e14d797) adds `nosniff` and
sends dangerous types as attachments.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import struct

from aiohttp import web
from PIL import Image

DANGEROUS = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


def _upload_dir(base, kind):
    if kind is None:
        kind = "input"
    folder = {"input": base.input, "temp": base.temp, "output": base.output}.get(kind)
    if folder is None:
        # What ComfyUI 0.3.64 does with an unknown type: an unbound variable, hence a 500.
        raise UnboundLocalError(
            "cannot access local variable 'type_dir' where it is not associated with a value"
        )
    return folder, kind


def _same_content(path: str, data: bytes) -> bool:
    if not os.path.exists(path):
        return False
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()


async def upload_image(request: web.Request) -> web.StreamResponse:
    base = request.app["standin"].base
    post = await request.post()
    image = post.get("image")
    overwrite = post.get("overwrite")
    upload_dir, kind = _upload_dir(base, post.get("type"))
    if not (image and image.file):
        return web.Response(status=400)
    filename = image.filename
    if not filename:
        return web.Response(status=400)
    subfolder = post.get("subfolder", "")
    folder = os.path.join(upload_dir, os.path.normpath(subfolder))
    path = os.path.abspath(os.path.join(folder, filename))
    if os.path.commonpath((upload_dir, path)) != upload_dir:
        return web.Response(status=400)
    os.makedirs(folder, exist_ok=True)
    data = image.file.read()
    stem, ext = os.path.splitext(filename)
    duplicate = False
    if overwrite not in ("true", "1"):
        counter = 1
        while os.path.exists(path):
            if _same_content(path, data):
                duplicate = True
                break
            filename = f"{stem} ({counter}){ext}"
            path = os.path.join(folder, filename)
            counter += 1
    if not duplicate:
        with open(path, "wb") as f:
            f.write(data)
    return web.json_response({"name": filename, "subfolder": subfolder, "type": kind})


async def view(request: web.Request) -> web.StreamResponse:
    standin = request.app["standin"]
    base, query = standin.base, request.rel_url.query
    if "filename" not in query:
        return web.Response(status=404)
    filename, folder = base.split_annotation(query["filename"])
    if not filename:
        return web.Response(status=400)
    if filename[0] == "/" or ".." in filename:
        return web.Response(status=400)
    if folder is None:
        folder = base.directory_by_type(query.get("type", "output"))
    if folder is None:
        return web.Response(status=400)
    if "subfolder" in query:
        candidate = os.path.join(folder, query["subfolder"])
        if os.path.commonpath((os.path.abspath(candidate), folder)) != folder:
            return web.Response(status=403)
        folder = candidate
    filename = os.path.basename(filename)
    path = os.path.join(folder, filename)
    if not os.path.isfile(path):
        return web.Response(status=404)
    disposition = {"Content-Disposition": f'filename="{filename}"'}
    if "preview" in query or query.get("channel", "rgba") in ("rgb", "a"):
        return _reencoded(path, query, disposition)
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    headers = dict(disposition)
    if standin.generation == "2026":
        safe = filename.replace("\\", "\\\\").replace('"', '\\"')
        headers = {"X-Content-Type-Options": "nosniff", "Content-Disposition": f'filename="{safe}"'}
        if content_type in DANGEROUS or content_type == "image/svg+xml":
            headers |= {"Vary": "Sec-Fetch-Dest", "Cache-Control": "no-store"}
            headers["Content-Disposition"] = f'attachment; filename="{safe}"'
            content_type = "application/octet-stream"
    elif content_type in DANGEROUS:
        content_type = "application/octet-stream"
    headers["Content-Type"] = content_type
    return web.FileResponse(path, headers=headers)


def _reencoded(path: str, query, disposition: dict) -> web.Response:
    """`preview=webp;90` / `channel=rgb|a`: the image re-encoded in memory, as upstream."""
    buffer = io.BytesIO()
    with Image.open(path) as img:
        if "preview" in query:
            info = query["preview"].split(";")
            fmt = (
                info[0]
                if info[0] in ("webp", "jpeg") and "a" not in query.get("channel", "")
                else "webp"
            )
            quality = int(info[-1]) if info[-1].isdigit() else 90
            if fmt == "jpeg" or query.get("channel", "") == "rgb":
                img = img.convert("RGB")
            img.save(buffer, format=fmt, quality=quality)
            return web.Response(
                body=buffer.getvalue(), content_type=f"image/{fmt}", headers=disposition
            )
        if query["channel"] == "rgb":
            img.convert("RGB").save(buffer, format="PNG")
        else:
            alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
            out = Image.new("RGBA", img.size)
            out.putalpha(alpha)
            out.save(buffer, format="PNG")
    return web.Response(body=buffer.getvalue(), content_type="image/png", headers=disposition)


async def view_metadata(request: web.Request) -> web.StreamResponse:
    base = request.app["standin"].base
    filename = request.rel_url.query.get("filename")
    if filename is None or not filename.endswith(".safetensors"):
        return web.Response(status=404)
    path = base.model_path(request.match_info["folder_name"], filename)
    if path is None:
        return web.Response(status=404)
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        if size > 1024 * 1024:
            return web.Response(status=404)
        header = json.loads(f.read(size))
    if "__metadata__" not in header:
        return web.Response(status=404)
    return web.json_response(header["__metadata__"])
