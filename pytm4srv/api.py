"""The REST layer: flask-smorest's Api and Blueprint, with strict argument parsing.

Strict means: unknown body fields and unknown query parameters are errors (a typo such as
``machines=3`` must not silently return every hold), a single-valued query parameter given twice is
an error, and a body that is not JSON answers 400. Every operation reads its query string: one that
declares no query schema has an empty one (``Blueprint.response``), so any parameter is unknown.

The OpenAPI document (``/api/openapi.json``, shown at ``/api/docs``) comes from the same schemas,
with every error answer an operation can give (``ErrorResponses``) and the bearer scheme.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Request, Response, current_app, g, request, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from webargs.flaskparser import FlaskParser, abort
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from pytm4srv import serving
from pytm4srv.errors import error_payload
from pytm4srv.fields import INT32_MAX
from pytm4srv.schemas import ZONE_NAME, ErrorSchema, zone_name_component

F = TypeVar("F", bound=Callable[..., Any])


class StrictParser(FlaskParser):
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "json": ma.RAISE,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def load_json(self, req: Request, schema: ma.Schema) -> Any:
        """The body as JSON, or a 400 that says why not.

        webargs' own ``load_json`` rests on hooks it keeps private, for its parsers alone; it
        invites a parser of its own to replace ``load_json`` instead, as this one does. A body
        that is absent, empty or not JSON is an error here, where webargs reads it as missing.
        """
        if not req.is_json:
            abort(400, message="The request body must be JSON (Content-Type: application/json).")
        data = req.get_data(cache=True)
        if not data.strip():
            abort(400, message="The request body is empty; send a JSON object.")
        try:
            return json.loads(data.decode(), object_pairs_hook=_unique_members)
        except _RepeatedMember as repeated:
            name = repeated.name
            errors = {"json": {name: [f"Given more than once; send {name!r} once."]}}
            abort(422, message="Invalid request body.", errors=errors)
        except UnicodeDecodeError:
            message = "The request body is not valid UTF-8."
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno}"
            message = f"The request body is not valid JSON: {error.msg} at {where}."
        except (RecursionError, ValueError):
            # Nesting too deep for the parser, or an integer literal longer than Python
            # converts (4300 digits).
            abort(400, message="The request body is not JSON that this service can read.")
        abort(400, message=message, messages={"json": [message]})

    def load_querystring(self, req: Request, schema: ma.Schema) -> Any:
        g.setdefault(_QUERY_READ, True)
        _reject_repeated(req.args, schema)
        return super().load_querystring(req, schema)


class _RepeatedMember(ValueError):
    """A JSON object names one member twice (RFC 8259 says names SHOULD be unique; "last one
    wins" would silently drop what a client sent)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members as a dict; _RepeatedMember for a name given twice."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _RepeatedMember(name)
            seen.add(name)
    return members


#: Set on ``g`` once a schema of the operation has read the query string.
_QUERY_READ = "pytm4srv_query_read"


class NoQuerySchema(ma.Schema):
    """The query string of an operation that takes no parameters: every one is unknown."""

    class Meta:
        unknown = ma.RAISE


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
    # No operation uses flask-smorest's pagination (the hold list pages with a Link header): if
    # one did, it would add no X-Pagination header.
    PAGINATION_HEADER_NAME = None

    def response(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's ``response``, which every operation has, innermost of its decorators
        that check input: a query string that no query schema of the operation read (above, in
        ``arguments``) is read with the empty :class:`NoQuerySchema`, so ``DELETE /holds/1?x=1``
        is a 422 naming ``x``. It runs after the role check, as the other input checks do.
        """
        respond = super().response(*args, **kwargs)
        parser = self.ARGUMENTS_PARSER

        def decorator(view: F) -> F:
            inner = respond(view)

            @functools.wraps(inner)
            def strict_query(*f_args: Any, **f_kwargs: Any) -> Any:
                if not g.get(_QUERY_READ):
                    parser.parse(NO_QUERY, location="query")
                return inner(*f_args, **f_kwargs)

            return strict_query  # type: ignore[return-value]

        return decorator


NO_QUERY = NoQuerySchema()


class Api(flask_smorest.Api):
    # Every error an operation can answer is listed by status (ErrorResponses), so no "default".
    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: Any) -> Any:
        return error_payload(error)


def _response(status: int) -> str:
    """The name of flask-smorest's response component for ``status`` (an error envelope)."""
    return HTTPStatus(status).name


class ErrorResponses(BasePlugin):
    """Documents the error answers every operation can give, from its path and body.

    Role checks add 403 themselves (``pytm4srv.auth.roles_required``); the rest follows from the
    request: every operation needs a token (401) unless it says it needs none (``security:
    []``), reads the database (503), has a bounded URL (414) and a strict query string (422);
    one with a body can get a body that is not JSON (400) or too large (413); one with an id in
    its path can name nothing (404).
    """

    def operation_helper(
        self, path: str | None = None, operations: Any = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            statuses = [414, 422, 503]
            if operation.get("security") != []:
                statuses.append(401)
            if "requestBody" in operation:
                statuses += [400, 413]
            if "{" in (path or ""):
                statuses.append(404)
            responses = {str(code): doc for code, doc in operation.get("responses", {}).items()}
            for status in statuses:
                responses.setdefault(str(status), _response(status))
            operation["responses"] = dict(sorted(responses.items()))


class CrossFieldRules(BasePlugin):
    """Adds to a schema's component what its schema says across fields (its ``openapi_rules``:
    which fields go together, which exclude one another), where JSON Schema can say it."""

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> Any:
        schema = kwargs.get("schema")
        rules = getattr(schema, "openapi_rules", None)
        return rules() if isinstance(schema, ma.Schema) and callable(rules) else None


def _document_custom_fields(
    converter: Any, field: ma.fields.Field[Any], **kwargs: Any
) -> dict[str, Any]:
    """OpenAPI properties of pytm4srv's own fields: their ``openapi`` class attribute."""
    properties = copy.deepcopy(getattr(type(field), "openapi", {}))
    if field.allow_none and "oneOf" in properties:
        # OpenAPI 3.0 reads `nullable` only beside a `type`: a branch must admit null.
        properties["oneOf"][0]["nullable"] = True
    return properties


def _read_body() -> None:
    """Read the whole body before the request does anything else.

    So a client that sends its body slowly holds no database transaction meanwhile (on SQLite,
    none holding the write lock), and a body over ``MAX_CONTENT_LENGTH`` answers 413 however it
    is sent: werkzeug cuts a chunked body at the limit without saying so, so one byte more
    means it was too large.
    """
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if request.content_length is None and not chunked:
        return
    cap = request.max_content_length
    too_large = f"The request body is larger than {cap} bytes."
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:  # werkzeug read none of it
        abort(413, message=too_large)
    except HTTPException:
        raise  # the client went away (werkzeug's ClientDisconnected, a 400)
    except Exception:  # the server's own error for a malformed body, chunked encoding above all
        abort(400, message="The request body could not be read: malformed chunked encoding.")
    if cap is not None and request.content_length is None and len(data) >= cap:
        if request.environ["wsgi.input"].read(1):
            abort(413, message=too_large)
    g.setdefault(_BODY_READ, True)


#: Set on ``g`` once the whole request body was read.
_BODY_READ = "pytm4srv_body_read"


def _close_if_body_unread(response: Response) -> Response:
    """An answer given before the request's whole body was read closes the connection: the
    rest of the body would be read as the next request (pytm4srv/serving.py)."""
    has_body = (
        request.content_length or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )
    if has_body and not g.get(_BODY_READ):
        response.headers["Connection"] = "close"
        serving.close_connection()
    return response


def _limit_url_length() -> None:
    cap = current_app.config["MAX_URL_LENGTH"]
    environ = request.environ
    # As sent (percent-encoded), as the server in front measures it.
    path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    if len(path.partition("?")[0]) + len(environ.get("QUERY_STRING", "")) > cap:
        abort(414, message=f"The URL is longer than {cap} characters.")


def schema_name(schema: type[ma.Schema] | ma.Schema) -> str | None:
    """OpenAPI component name: the class name less "Schema", "Patch" for a partial schema.

    None (apispec then writes the schema out where it is used) for a schema that is not the
    service's: flask-smorest's PaginationMetadata, which it registers for its ``X-Pagination``
    header whether or not an operation pages that way; none does (the hold list pages with a
    Link header), so the document does not show it.
    """
    cls = schema if isinstance(schema, type) else type(schema)
    if not cls.__module__.startswith(f"{__package__}."):
        return None
    name = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial:
        name += "Patch"
    return name


BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token from `flask --app pytm4srv users create NAME --role ROLE`.",
}

UNAUTHORIZED = {
    "description": "No token, or an unknown one.",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": ErrorSchema}},
}

DOCS_ASSETS = "/api/docs/assets/"


class DecimalIntegerConverter(IntegerConverter):
    """``<int:...>`` in ASCII digits only: werkzeug's own also matches other Unicode digits, so
    ``/holds/١`` (ARABIC-INDIC DIGIT ONE) would name hold 1."""

    regex = r"[0-9]+"


def id_in_path(name: str) -> str:
    """The part of a URL rule that takes the id ``name``: ASCII digits, at most the largest id
    (a larger number names nothing: 404, not a database error)."""
    return f"<int(max={INT32_MAX}):{name}>"


#: URL rule parts of the ids in paths, shared by the blueprints whose routes name the same object.
MACHINE_ID = id_in_path("machine_id")
HOLD_ID = id_in_path("hold_id")
SCHEDULE_ID = id_in_path("schedule_id")


def init_app(app: Flask) -> Api:
    """Attach the REST API, its OpenAPI document and its docs page to ``app``."""
    app.config.setdefault("API_TITLE", "pytm4srv holds API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.url_map.converters["int"] = DecimalIntegerConverter
    _serve_swagger_ui(app)
    app.before_request(_limit_url_length)
    app.before_request(_read_body)
    app.after_request(_close_if_body_unread)

    # apispec's type hint leaves out the None that its documentation allows (write it out).
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)  # type: ignore[arg-type]
    spec_kwargs = {
        "marshmallow_plugin": plugin,
        "extra_plugins": [ErrorResponses(), CrossFieldRules()],
        "security": [{"bearerAuth": []}],
    }
    api = Api(app, spec_kwargs=spec_kwargs)
    api.spec.components.security_scheme("bearerAuth", BEARER)
    api.spec.components.schema(ZONE_NAME, zone_name_component())
    api.spec.components.response(_response(401), UNAUTHORIZED, lazy=True)
    converter = plugin.converter
    assert converter is not None  # set when the spec was made
    converter.add_attribute_function(_document_custom_fields)  # type: ignore[no-untyped-call]
    converter.add_attribute_function(_config_maximum(app))  # type: ignore[no-untyped-call]
    return api


def _config_maximum(app: Flask) -> Any:
    def config_maximum(
        converter: Any, field: ma.fields.Field[Any], **kwargs: Any
    ) -> dict[str, Any]:
        """``maximum`` of a field whose cap is a setting (metadata ``maximum_setting``)."""
        setting = field.metadata.get("maximum_setting")
        return {"maximum": app.config[setting]} if setting else {}

    return config_maximum


def _serve_swagger_ui(app: Flask) -> None:
    """Swagger UI at /api/docs, its assets served from the swagger-ui-bundle package.

    Local assets: the page works without internet access.
    """
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", DOCS_ASSETS)

    def docs_asset(filename: str) -> Any:
        return send_from_directory(swagger_ui_path, filename)

    app.add_url_rule(f"{DOCS_ASSETS}<path:filename>", "docs_asset", docs_asset)


__all__ = ["Api", "Blueprint", "init_app"]


#: The ``Link`` header of a list answered a page at a time, for the OpenAPI document.
NEXT_PAGE = {
    "description": 'RFC 8288 link to the next page (rel="next"), when the page is full.',
    "schema": {"type": "string"},
}


def next_page_link(offset: int, limit: int) -> str:
    """RFC 8288 link to the next page, for a list cut short by the page size.

    A relative reference (path and query): nothing in it comes from the request's ``Host``
    header, so a forged one cannot send clients elsewhere.
    """
    args = request.args.copy()
    args["offset"] = str(offset)
    args["limit"] = str(limit)
    path = quote(request.script_root + request.path)
    return f'<{path}?{urlencode(list(args.items(multi=True)))}>; rel="next"'
