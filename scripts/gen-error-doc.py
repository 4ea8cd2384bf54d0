#!/usr/bin/env python3
"""Regenerate docs/errors.md from the catalogue in src/error.rs (a unit test checks they agree)."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
source = (root / "src/error.rs").read_text()
rows = re.findall(r'(\w+) => "(\w+)", (\w+),\s*"((?:[^"\\]|\\.)*)",\s*"((?:[^"\\]|\\.)*)";', source)
status = {"BAD_REQUEST": 400, "UNPROCESSABLE_ENTITY": 422, "UNAUTHORIZED": 401, "FORBIDDEN": 403,
          "NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405, "CONFLICT": 409, "PAYLOAD_TOO_LARGE": 413,
          "UNSUPPORTED_MEDIA_TYPE": 415, "TOO_MANY_REQUESTS": 429, "SERVICE_UNAVAILABLE": 503,
          "INTERNAL_SERVER_ERROR": 500}
lines = ["# API error codes", "",
         "Every error body is `{\"code\", \"message\", \"message_zh\", \"details\"}`. The table is generated from",
         "`src/error.rs` (`ErrorCode`) by `scripts/gen-error-doc.py`; a test checks the two agree.", "",
         "| code | status | message | message_zh |", "|---|---|---|---|"]
lines += [f"| `{code}` | {status[st]} | {en} | {zh} |" for _, code, st, en, zh in rows]
(root / "docs/errors.md").write_text("\n".join(lines) + "\n")
print(f"{len(rows)} codes")
