"""The local stack's HTTP front: one port, SageMaker to the control plane, everything else to moto.

One port keeps the set-up to a single variable (``AWS_ENDPOINT_URL``) and lets
``boto3.client(any_service, endpoint_url=stack.endpoint_url)`` work for every service. A request
is SageMaker's when it is signed for the ``sagemaker`` service (both ``sagemaker`` and
``sagemaker-runtime`` sign that way), or, unsigned, when it carries ``X-Amz-Target: SageMaker.*`` or
posts to ``/endpoints/<name>/invocations``. Moto's own app answers the rest in-process (no proxy hop).
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from .controlplane import ControlPlane
from .support import ApiError

logger = logging.getLogger(__name__)

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_INVOKE = re.compile(r"^/endpoints/([^/]+)/invocations$")

StartResponse = Callable[..., Any]


def signed_service(environ: dict) -> str:
    """The service a request is signed for (``s3``, ``logs``, ...), or "" when unsigned."""
    m = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return m.group(1) if m else ""


class PersistingApp:
    """WSGI middleware in front of moto: S3 writes are saved to the state folder before they are
    acknowledged (write-through), CloudWatch Logs writes mark the logs dirty for a periodic save.

    So an object the client was told is stored survives a crash of the local stack. Multipart parts
    are not saved one by one: the object is saved when the upload completes.
    """

    def __init__(self, app: Callable, save_s3: Callable[[], None], logs_written: Callable[[], None]):
        self.app = app
        self.save_s3 = save_s3
        self.logs_written = logs_written
        self.enabled = False  # off while the saved state is being restored

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not self.enabled:
            return self.app(environ, start_response)
        service = signed_service(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        if service == "s3" and method in ("PUT", "POST", "DELETE"):
            query = environ.get("QUERY_STRING", "")
            if "partNumber=" in query or (method == "POST" and "uploads" in query.split("&")):
                return self.app(environ, start_response)  # a part, or the start of an upload
            body = list(self.app(environ, start_response))  # moto has stored it ...
            self.save_s3()                                    # ... now the state folder has too
            return body
        if service == "logs" and any(op in environ.get("HTTP_X_AMZ_TARGET", "")
                                     for op in ("PutLogEvents", "CreateLog", "DeleteLog")):
            self.logs_written()
        return self.app(environ, start_response)


def is_sagemaker(environ: dict) -> bool:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _SCOPE.search(auth)
    if m:
        return m.group(1) == "sagemaker"
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("SageMaker."):
        return True
    return environ.get("REQUEST_METHOD") == "POST" and bool(_INVOKE.match(environ.get("PATH_INFO", "")))


class FrontApp:
    """WSGI app: SageMaker JSON API and InvokeEndpoint here, every other AWS API to moto."""

    def __init__(self, control_plane: ControlPlane, moto_app: Callable):
        self.cp = control_plane
        self.moto_app = moto_app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not is_sagemaker(environ):
            return self.moto_app(environ, start_response)
        from werkzeug.wrappers import Request
        request = Request(environ)
        request_id = str(uuid.uuid4())
        target = request.headers.get("X-Amz-Target", "")
        invoke = _INVOKE.match(request.path)
        try:
            if target.startswith("SageMaker."):
                return self._json_api(target.split(".", 1)[1], request, request_id, start_response)
            if invoke and request.method == "POST":
                return self._invoke(unquote(invoke.group(1)), request, request_id, start_response)
            raise ApiError("UnknownOperationException", f"No SageMaker operation at {request.method} {request.path}; "
                                                        "the local stack serves the JSON API at POST / and "
                                                        "InvokeEndpoint at POST /endpoints/<name>/invocations.", 404)
        except ApiError as e:
            return self._error(e, request_id, start_response, rest=not target)
        except Exception as e:  # a bug in the control plane: answer 500 rather than drop the connection
            logger.exception("internal error in the local SageMaker control plane")
            return self._error(ApiError("InternalFailure", f"internal error in the local control plane: {e}", 500),
                               request_id, start_response, rest=not target)

    def _json_api(self, operation: str, request: Any, request_id: str, start_response: StartResponse) -> list[bytes]:
        raw = request.get_data()
        try:
            params = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise ApiError("SerializationException", f"the request body is not JSON: {e}") from e
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "the request body must be a JSON object")
        result = self.cp.handle(operation, params)
        body = json.dumps(result).encode("utf-8")
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"),
                                  ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)])
        return [body]

    def _invoke(self, name: str, request: Any, request_id: str, start_response: StartResponse) -> list[bytes]:
        headers = {"Content-Type": request.headers.get("Content-Type", "application/octet-stream")}
        for h in ("Accept", "X-Amzn-SageMaker-Custom-Attributes"):
            if request.headers.get(h):
                headers[h] = request.headers[h]
        status, out_headers, body = self.cp.endpoints.invoke(name, request.get_data(), headers)
        hdrs = list(out_headers.items()) + [("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)]
        start_response(f"{status} OK", hdrs)
        return [body]

    @staticmethod
    def _error(e: ApiError, request_id: str, start_response: StartResponse, rest: bool) -> list[bytes]:
        payload: dict[str, Any] = {"__type": e.code, "message": e.message, **e.fields}
        body = json.dumps(payload).encode("utf-8")
        headers = [("Content-Type", "application/json" if rest else "application/x-amz-json-1.1"),
                   ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id),
                   ("x-amzn-ErrorType", e.code)]
        start_response(f"{e.status} Error", headers)
        return [body]
