"""Validate a real HTTP answer against the response schema ``/api/openapi.json`` declares."""

from __future__ import annotations

import re

from jsonschema import Draft202012Validator


def operation_of(document: dict, path: str, method: str) -> dict:
    """The documented operation whose path template matches the concrete ``path``."""
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def check_answer(document: dict, path: str, method: str, response) -> None:
    """``response`` (requests) has a documented status and media type, and its JSON body
    validates against the schema documented for both."""
    responses = operation_of(document, path.split("?")[0], method)["responses"]
    code = str(response.status_code)
    assert code in responses, f"{method} {path} answered {code}, documented: {sorted(responses)}"
    media = response.headers.get("Content-Type", "").split(";")[0].strip()
    content = responses[code].get("content", {})
    assert media in content, f"{method} {path} {code} answered {media}, documented {list(content)}"
    if media == "application/json":
        schema = {**content[media]["schema"], "components": document["components"]}
        Draft202012Validator(schema).validate(response.json())
