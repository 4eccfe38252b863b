"""The REST layer: flask-smorest's Api and Blueprint, with strict argument parsing.

Strict means: unknown body fields and unknown query parameters are errors (a typo such as
``machines=3`` must not silently return every hold), a single-valued query parameter given twice is
an error, and a body that is not JSON answers 400.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Request
from webargs import core
from webargs.flaskparser import FlaskParser, abort
from werkzeug.datastructures import MultiDict

from pytm4srv.errors import error_payload


class StrictParser(FlaskParser):
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "json": ma.RAISE,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def _raw_load_json(self, req: Request) -> Any:
        if not req.is_json:
            abort(400, message="The request body must be JSON (Content-Type: application/json).")
        if not req.get_data(cache=True).strip():
            abort(400, message="The request body is empty; send a JSON object.")
        return super()._raw_load_json(req)

    def load_querystring(self, req: Request, schema: ma.Schema) -> Any:
        _reject_repeated(req.args, schema)
        return super().load_querystring(req, schema)


def _reject_repeated(args: MultiDict[str, str], schema: ma.Schema) -> None:
    errors = {
        name: ["Given more than once; this parameter takes a single value."]
        for name, field in schema.fields.items()
        if not isinstance(field, ma.fields.List) and len(args.getlist(field.data_key or name)) > 1
    }
    if errors:
        abort(422, errors={"query": errors}, message="Invalid query parameters.")


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class Api(flask_smorest.Api):
    def handle_http_exception(self, error: Any) -> Any:
        return error_payload(error)


def schema_name(schema: type[ma.Schema] | ma.Schema) -> str:
    """OpenAPI component name: the class name less "Schema", "Patch" for a partial schema."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial:
        name += "Patch"
    return name


def init_app(app: Flask) -> Api:
    """Attach the REST API and its OpenAPI document to ``app``."""
    app.config.setdefault("API_TITLE", "pytm4srv holds API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    return Api(app, spec_kwargs={"marshmallow_plugin": plugin})


__all__ = ["Api", "Blueprint", "core", "init_app"]
