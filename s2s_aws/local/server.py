"""The local stack's HTTP front: one port, SageMaker to the control plane, everything else to moto.

One port keeps the set-up to a single variable (``AWS_ENDPOINT_URL``) and lets
``boto3.client(any_service, endpoint_url=stack.endpoint_url)`` work for every service. A request
is SageMaker's when it is signed for the ``sagemaker`` service (both ``sagemaker`` and
``sagemaker-runtime`` sign that way), or, unsigned, when it carries ``X-Amz-Target: SageMaker.*`` or
posts to ``/endpoints/<name>/invocations``. Moto's own app answers the rest in-process (no proxy hop).
"""
from __future__ import annotations

import io
import json
import logging
import re
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

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

    def __init__(self, app: Callable, save_s3: Callable[[], None], logs_written: Callable[[], None],
                 save_iam: Callable[[], None] | None = None):
        self.app = app
        self.save_s3 = save_s3
        self.logs_written = logs_written
        self.save_iam = save_iam
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
        if service == "iam" and method == "POST" and self.save_iam is not None:
            action = (parse_qs(_read_body(environ).decode("utf-8", "replace")).get("Action") or [""])[0]
            if not action.startswith(_IAM_READS):
                body = list(self.app(environ, start_response))  # roles and policies: write-through too
                self.save_iam()
                return body
        return self.app(environ, start_response)


_IAM_READS = ("Get", "List", "Simulate", "Generate")


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
            return self._aws(environ, start_response)
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

    # ------------------------------------------------------------------ the few non-SageMaker answers of our own
    def _aws(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        """Moto, except for what clients need and moto gets wrong or lacks: logs:FilterLogEvents with
        ``logStreamNamePrefix`` (moto ignores the prefix) and iam:SimulatePrincipalPolicy (moto lacks it;
        the SageMaker Python SDK v3 calls it to check the execution role)."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        try:
            if target == "Logs_20140328.FilterLogEvents":
                return self._filter_log_events(environ, start_response)
            if signed_service(environ) == "iam" and environ.get("REQUEST_METHOD") in ("POST", "GET"):
                form = parse_qs(environ.get("QUERY_STRING", ""))
                if environ.get("REQUEST_METHOD") == "POST":
                    form.update(parse_qs(_read_body(environ).decode("utf-8", "replace")))
                if form.get("Action") == ["SimulatePrincipalPolicy"]:
                    return self._simulate_principal_policy(form, start_response)
        except _AwsError as e:
            return e.answer(start_response)
        return self.moto_app(environ, start_response)

    def _filter_log_events(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        raw = _read_body(environ)
        try:
            params = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self.moto_app(environ, start_response)
        if not isinstance(params, dict) or "logStreamNamePrefix" not in params:
            return self.moto_app(environ, start_response)
        if params.get("logStreamNames"):
            raise _AwsError("InvalidParameterException",
                            "logStreamNames and logStreamNamePrefix are mutually exclusive; pass one of them.")
        group = params.get("logGroupName") or params.get("logGroupIdentifier") or ""
        if group.startswith("arn:"):  # arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
            group = group.split(":log-group:", 1)[-1].removesuffix(":*")
        prefix = params.pop("logStreamNamePrefix")
        logs = self.cp.ctx.logs
        names: list[str] = []
        try:
            for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group,
                                                                             logStreamNamePrefix=prefix):
                names.extend(st["logStreamName"] for st in page.get("logStreams", []))
        except Exception as e:  # no such group, a bad name: answer what moto answered (never all streams)
            response = getattr(e, "response", None) or {}
            error = response.get("Error") or {}
            raise _AwsError(error.get("Code") or "InvalidParameterException",
                            error.get("Message") or f"cannot list the streams of log group {group!r}: {e}",
                            int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 400)) from e
        if not names:
            body = json.dumps({"events": [], "searchedLogStreams": []}).encode("utf-8")
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"),
                                      ("Content-Length", str(len(body))),
                                      ("x-amzn-RequestId", str(uuid.uuid4()))])
            return [body]
        params["logStreamNames"] = names
        if "logGroupIdentifier" in params:  # moto reads logGroupName only
            params.pop("logGroupIdentifier")
            params["logGroupName"] = group
        _replace_body(environ, json.dumps(params).encode("utf-8"))
        return self.moto_app(environ, start_response)

    @staticmethod
    def _simulate_principal_policy(form: dict[str, list[str]], start_response: StartResponse) -> list[bytes]:
        """Every action is allowed locally (there is nothing to protect); one result per action and resource."""
        from xml.sax.saxutils import escape

        def members(name: str) -> list[str]:
            keys = sorted((k for k in form if k.startswith(name + ".member.")), key=lambda k: int(k.rsplit(".", 1)[1])
                          if k.rsplit(".", 1)[1].isdigit() else 0)
            return [form[k][0] for k in keys]
        if not form.get("PolicySourceArn"):
            raise _AwsError("ValidationError", "SimulatePrincipalPolicy needs PolicySourceArn (the ARN of a user, "
                                               "group or role).", xml=True)
        actions = members("ActionNames")
        if not actions:
            raise _AwsError("ValidationError", "SimulatePrincipalPolicy needs at least one ActionNames.member.N.",
                            xml=True)
        resources = members("ResourceArns") or ["*"]
        results = "".join(
            "<member><EvalActionName>{}</EvalActionName><EvalResourceName>{}</EvalResourceName>"
            "<EvalDecision>allowed</EvalDecision><MatchedStatements/><MissingContextValues/></member>".format(
                escape(a), escape(r)) for a in actions for r in resources)
        body = ('<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>"
                f"<EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>"
                f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                "</SimulatePrincipalPolicyResponse>").encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
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


class _AwsError(Exception):
    """An error answer of one of our non-SageMaker operations (JSON, or IAM's query-protocol XML)."""

    def __init__(self, code: str, message: str, status: int = 400, xml: bool = False):
        super().__init__(message)
        self.code, self.message, self.status, self.xml = code, message, status, xml

    def answer(self, start_response: StartResponse) -> list[bytes]:
        request_id = str(uuid.uuid4())
        if self.xml:
            from xml.sax.saxutils import escape
            body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                    f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message></Error>"
                    f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode("utf-8")
            ctype = "text/xml"
        else:
            body = json.dumps({"__type": self.code, "message": self.message}).encode("utf-8")
            ctype = "application/x-amz-json-1.1"
        start_response(f"{self.status} Error", [("Content-Type", ctype), ("Content-Length", str(len(body))),
                                                ("x-amzn-RequestId", request_id)])
        return [body]


def _read_body(environ: dict) -> bytes:
    """The request body; puts an equal stream back so that moto can read it too."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    _replace_body(environ, body)
    return body


def _replace_body(environ: dict, body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
