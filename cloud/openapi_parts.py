"""The pieces every OpenAPI module of the control plane builds its paths from."""
from __future__ import annotations


def error(code: str, detail: str) -> dict:
    """A response of the one error shape, `{"error": code, "detail": detail}`."""
    return {"description": detail, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"},
        "example": {"error": code, "detail": detail}}}}


def ok(description: str, example: dict) -> dict:
    return {"description": description, "content": {"application/json": {"example": example}}}


def object_body(properties: dict, example: dict, required: tuple = ()) -> dict:
    """A JSON-object request body that takes `properties` and nothing else."""
    return {"required": bool(required), "content": {"application/json": {
        "schema": {"type": "object", "additionalProperties": False, "properties": properties,
                   "required": list(required)},
        "example": example}}}
