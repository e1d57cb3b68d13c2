"""The local SageMaker control plane: the JSON 1.1 API (``X-Amz-Target: SageMaker.<Operation>``).

Requests are validated against botocore's own SageMaker service model (required members, types,
lengths) plus the name patterns, and answered in the real response shapes. Errors use the codes the
real service uses: ``ValidationException`` for missing or duplicate resources and bad input,
``ResourceNotFound`` for StopTrainingJob, ``ResourceInUse`` for a duplicate training or transform job.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import Any, Callable

from .endpoints import EndpointManager
from .jobs import TrainingRunner, TransformRunner
from .pipelines import PipelinesMixin
from .processing import ProcessingMixin
from .support import ACCOUNT_ID, ApiError, Context, arn, now
from .tuning import TuningMixin

logger = logging.getLogger(__name__)

# matched with fullmatch (a "$" would let a trailing newline through)
_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_MODEL_NAME = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")

#: Environment variables that change how Python, the dynamic loader or a shell start a program. The
#: local API is unsigned and the programs run as the user who runs the stack, so a request that could
#: set these could run code of its choosing (e.g. PYTHONPATH pointing at a channel folder it uploaded).
_DENIED_ENV = frozenset({
    "PATH", "HOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONINSPECT", "PYTHONUSERBASE",
    "PYTHONEXECUTABLE", "PYTHONPLATLIBDIR", "PYTHONBREAKPOINT", "PYTHONWARNINGS", "PYTHONSAFEPATH",
    "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS", "GCONV_PATH", "LOCPATH",
    "NLSPATH", "GLIBC_TUNABLES", "HOSTALIASES", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB",
    "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "S2S_LOCAL_TRAIN_COMMAND", "S2S_LOCAL_SERVE_COMMAND",
})
_DENIED_ENV_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_")


def check_environment(env: Any, where: str) -> None:
    """Refuse ``Environment`` variables that change how the train/serve program starts (ValidationException)."""
    for key in env or {}:
        upper = str(key).upper()
        if upper in _DENIED_ENV or upper.startswith(_DENIED_ENV_PREFIXES):
            raise _validation(
                f"{where}: the environment variable {key} is not allowed by the local control plane: it changes "
                "how Python, the dynamic loader or a shell start the program, and the local API runs programs "
                "as the user who started the stack. Remove it (put settings in HyperParameters or in "
                "variables the program itself reads).")

# resource kind -> (ARN type, name field, ARN field)
_KINDS = {
    "training-job": ("training-job", "TrainingJobName", "TrainingJobArn"),
    "model": ("model", "ModelName", "ModelArn"),
    "endpoint-config": ("endpoint-config", "EndpointConfigName", "EndpointConfigArn"),
    "endpoint": ("endpoint", "EndpointName", "EndpointArn"),
    "transform-job": ("transform-job", "TransformJobName", "TransformJobArn"),
}


#: The metrics SageMaker documents for the built-in seq2seq algorithm. Locally the built-in image runs
#: our training program, so their regexes are ours (they match the "#metric NAME=VALUE" lines).
BUILTIN_METRIC_NAMES = ("validation:accuracy", "validation:bleu", "validation:perplexity")


def default_metric_definitions(image: str) -> list[dict[str, str]]:
    """What DescribeTrainingJob shows when CreateTrainingJob named no MetricDefinitions: SageMaker fills in
    the built-in algorithm's definitions for the built-in image; we fill in ours for our image
    (repository ``s2s-aws-seq2seq``); any other image gets none."""
    from ..images import DEFAULT_REPOSITORY, is_builtin_image_uri
    from ..contract.metrics import METRIC_DEFINITIONS
    if is_builtin_image_uri(image):
        return [dict(d) for d in METRIC_DEFINITIONS if d["Name"] in BUILTIN_METRIC_NAMES]
    repository = image.split("/", 1)[1] if "/" in image else ""
    repository = repository.split("@", 1)[0].split(":", 1)[0]
    if repository == DEFAULT_REPOSITORY:
        return [dict(d) for d in METRIC_DEFINITIONS]
    return []


def _validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def _channel_defaults(channel: dict) -> dict:
    """A training channel as DescribeTrainingJob shows it: SageMaker fills in the defaults."""
    channel = dict(channel)
    channel.setdefault("CompressionType", "None")
    channel.setdefault("RecordWrapperType", "None")
    source = channel.get("DataSource", {}).get("S3DataSource")
    if source is not None:
        channel["DataSource"] = {**channel["DataSource"],
                                 "S3DataSource": {"S3DataDistributionType": "FullyReplicated", **source}}
    return channel


def _container_defaults(container: dict) -> dict:
    return {"Mode": "SingleModel", "Environment": {}, **container}


def _public(rec: dict) -> dict:
    """A record without the control plane's own bookkeeping keys (those start with '_')."""
    return {k: v for k, v in rec.items() if not k.startswith("_")}


_PATTERNS: dict[str, re.Pattern | None] = {}


def _pattern(text: str) -> re.Pattern | None:
    """The model's (Java) pattern compiled for Python, or None when Python cannot read it (e.g. \\p{L})."""
    if text not in _PATTERNS:
        try:
            _PATTERNS[text] = re.compile(text)
        except re.error:
            _PATTERNS[text] = None
    return _PATTERNS[text]


def _check_patterns(value: Any, shape: Any, path: str) -> None:
    """Every string member must fully match its shape's pattern, as the real service checks (botocore's
    client-side validation does not look at patterns)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _check_patterns(value[name], member, f"{path}.{name}")
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _check_patterns(item, shape.member, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            _check_patterns(k, shape.key, f"{path} key {k!r}")
            _check_patterns(v, shape.value, f"{path}.{k}")
    elif kind == "string" and isinstance(value, str) and "pattern" in shape.metadata:
        compiled = _pattern(shape.metadata["pattern"])
        if compiled is not None and not compiled.fullmatch(value):
            raise _validation(f"1 validation error detected: Value {value[:200]!r} at '{path}' failed to satisfy "
                              f"constraint: Member must satisfy regular expression pattern: "
                              f"{shape.metadata['pattern']}")


class ControlPlane(ProcessingMixin, PipelinesMixin, TuningMixin):
    """Dispatches SageMaker API operations to handlers and owns the job runners.

    Processing jobs, pipelines (with model packages) and tuning jobs live in their own modules as
    mixins: each adds ``op_<Operation>`` methods and its own ``_restore_*``/``_shutdown_*`` hooks."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.reg = ctx.registry
        self.endpoints = EndpointManager(ctx)
        self._training: dict[str, TrainingRunner] = {}
        self._transform: dict[str, TransformRunner] = {}
        self._model_lock = threading.Lock()
        self._service_model: Any = None

    # ------------------------------------------------------------------ dispatch
    def handle(self, operation: str, params: dict) -> dict:
        """Run one operation; returns the response dict or raises ApiError."""
        handler: Callable[[dict], dict] | None = getattr(self, "op_" + operation, None)
        if handler is None:
            raise ApiError("UnknownOperationException",
                           f"The local SageMaker control plane does not implement {operation}; "
                           "it covers training jobs, models, endpoint configs, endpoints, transform jobs and tags.")
        self._validate(operation, params)
        return handler(params)

    def _validate(self, operation: str, params: dict) -> None:
        with self._model_lock:
            if self._service_model is None:
                import botocore.session
                self._service_model = botocore.session.get_session().get_service_model("sagemaker")
        from botocore.exceptions import ParamValidationError
        from botocore.validate import ParamValidator
        shape = self._service_model.operation_model(operation).input_shape
        if shape is None:
            return
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise _validation(f"{operation}: {report.generate_report()}")
        _check_patterns(params, shape, operation)

    def _echo(self, create: str, describe: str, params: dict) -> dict:
        """The request members that the Describe answer shows as sent (those both shapes have), e.g. a
        training job's VpcConfig, DebugHookConfig, ProfilerConfig, ExperimentConfig, RetryStrategy."""
        assert self._service_model is not None  # loaded by _validate
        sent = self._service_model.operation_model(create).input_shape.members
        shown = self._service_model.operation_model(describe).output_shape.members
        return {k: v for k, v in params.items() if k in sent and k in shown and v not in (None, "", [], {})}

    def _check_name(self, value: str, field: str, pattern: re.Pattern = _NAME) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value) or len(value) > 63:
            raise _validation(f"1 validation error detected: Value {value!r} at '{field}' failed to satisfy "
                              f"constraint: Member must satisfy regular expression pattern: "
                              f"{pattern.pattern} and have length <= 63")

    def _arn(self, kind: str, name: str) -> str:
        return arn(self.ctx.region, _KINDS[kind][0], name)

    def _new(self, kind: str, name: str, record: dict, tags: list | None) -> str:
        resource_arn = self._arn(kind, name)
        record[_KINDS[kind][2]] = resource_arn
        record["_Arn"] = resource_arn
        record["_Tags"] = list(tags or [])
        self.reg.put(kind, name, record)
        return resource_arn

    def _list(self, kind: str, params: dict, summary: Callable[[dict], dict], key: str,
              status_field: str | None = None, default_order: str = "Descending") -> dict:
        name_field = _KINDS[kind][1]
        recs = self.reg.all(kind)
        if params.get("NameContains"):
            recs = [r for r in recs if params["NameContains"].lower() in r[name_field].lower()]
        if status_field and params.get("StatusEquals"):
            recs = [r for r in recs if r.get(status_field) == params["StatusEquals"]]
        for field, test in (("CreationTimeAfter", lambda r, t: r["CreationTime"] > t),
                            ("CreationTimeBefore", lambda r, t: r["CreationTime"] < t),
                            ("LastModifiedTimeAfter", lambda r, t: r.get("LastModifiedTime", 0) > t),
                            ("LastModifiedTimeBefore", lambda r, t: r.get("LastModifiedTime", 0) < t)):
            if params.get(field) is not None:
                t = float(params[field])
                recs = [r for r in recs if test(r, t)]
        sort_by = params.get("SortBy", "CreationTime")
        sort_key = {"Name": lambda r: r[name_field], "Status": lambda r: r.get(status_field or "", "")}.get(
            sort_by, lambda r: r["CreationTime"])
        recs.sort(key=sort_key, reverse=params.get("SortOrder", default_order) == "Descending")
        start = 0
        if params.get("NextToken"):
            try:
                start = int(params["NextToken"])
            except ValueError:
                raise _validation(f"Invalid NextToken {params['NextToken']!r}; pass the token of the previous page.")
        limit = int(params.get("MaxResults", 10 if kind == "training-job" else 100))
        page = recs[start:start + limit]
        out: dict[str, Any] = {key: [summary(r) for r in page]}
        if start + limit < len(recs):
            out["NextToken"] = str(start + limit)
        return out

    def _get(self, kind: str, name: str, missing: str, code: str = "ValidationException") -> dict:
        rec = self.reg.get(kind, name)
        if rec is None:
            raise ApiError(code, missing)
        return rec

    # ------------------------------------------------------------------ training jobs
    def op_CreateTrainingJob(self, p: dict) -> dict:
        name = p["TrainingJobName"]
        self._check_name(name, "trainingJobName")
        algo = p.get("AlgorithmSpecification") or {}
        if not algo.get("TrainingImage") and not algo.get("AlgorithmName"):
            raise _validation("AlgorithmSpecification must name a TrainingImage or an AlgorithmName.")
        for ch in p.get("InputDataConfig", []):
            src = ch.get("DataSource", {}).get("S3DataSource")
            if src is None:
                raise _validation(f"Channel {ch['ChannelName']!r}: only S3DataSource is supported by the local "
                                  "control plane; upload the data to the local S3 and pass its S3Uri.")
            if src.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise _validation(f"Channel {ch['ChannelName']!r}: S3DataType {src['S3DataType']} is not "
                                  "supported locally; use S3Prefix.")
        names = [ch["ChannelName"] for ch in p.get("InputDataConfig", [])]
        if len(set(names)) != len(names):
            raise _validation(f"Channel names must be unique, got {names}.")
        for cname in names:
            if cname in (".", ".."):
                raise _validation(f"Channel name {cname!r} is not allowed: it names a folder, not a channel "
                                  "(use letters, digits, '.', '-' and '_').")
        check_environment(p.get("Environment"), "CreateTrainingJob Environment")
        with self.reg.lock:
            if self.reg.exists("training-job", name):
                raise ApiError("ResourceInUse", "Training job names must be unique within an AWS account and "
                                                f"region, and a training job with this name already exists "
                                                f"({self._arn('training-job', name)})")
            t = now()
            algo = dict(algo)
            algo.setdefault("TrainingInputMode", "File")
            if not algo.get("MetricDefinitions"):
                defaults = default_metric_definitions(algo.get("TrainingImage", ""))
                if defaults:
                    algo["MetricDefinitions"] = defaults
            output = {"KmsKeyId": "", **p["OutputDataConfig"]}  # SageMaker always answers KmsKeyId
            record = {
                **self._echo("CreateTrainingJob", "DescribeTrainingJob", p),
                "TrainingJobName": name, "AlgorithmSpecification": algo, "RoleArn": p["RoleArn"],
                "InputDataConfig": [_channel_defaults(ch) for ch in p.get("InputDataConfig", [])],
                "OutputDataConfig": output,
                "ResourceConfig": p.get("ResourceConfig", {}),
                "StoppingCondition": p.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400},
                "HyperParameters": p.get("HyperParameters", {}), "Environment": p.get("Environment", {}),
                "EnableNetworkIsolation": p.get("EnableNetworkIsolation", False),
                "EnableInterContainerTrafficEncryption": p.get("EnableInterContainerTrafficEncryption", False),
                "EnableManagedSpotTraining": p.get("EnableManagedSpotTraining", False),
                "CreationTime": t, "LastModifiedTime": t,
                "TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting",
                "SecondaryStatusTransitions": [{"Status": "Starting", "StartTime": t,
                                                "StatusMessage": "Preparing the instances for training"}],
            }
            if p.get("CheckpointConfig"):
                record["CheckpointConfig"] = p["CheckpointConfig"]
            job_arn = self._new("training-job", name, record, p.get("Tags"))
        runner = TrainingRunner(self.ctx, name)
        self._training[name] = runner
        runner.start()
        return {"TrainingJobArn": job_arn}

    def op_DescribeTrainingJob(self, p: dict) -> dict:
        return _public(self._get("training-job", p["TrainingJobName"], "Requested resource not found."))

    def op_ListTrainingJobs(self, p: dict) -> dict:
        def summary(r: dict) -> dict:
            keys = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime", "LastModifiedTime",
                    "TrainingJobStatus", "SecondaryStatus")
            return {k: r[k] for k in keys if k in r}
        return self._list("training-job", p, summary, "TrainingJobSummaries", "TrainingJobStatus",
                          default_order="Ascending")

    def op_StopTrainingJob(self, p: dict) -> dict:
        name = p["TrainingJobName"]
        with self.reg.lock:
            rec = self._get("training-job", name, "Requested resource not found.", code="ResourceNotFound")
            if rec["TrainingJobStatus"] != "InProgress":
                raise _validation(f"The training job {name} is not in progress (status {rec['TrainingJobStatus']}); "
                                  "only an InProgress job can be stopped.")
            self.reg.update("training-job", name, {"TrainingJobStatus": "Stopping", "LastModifiedTime": now()})
        runner = self._training.get(name)
        if runner is not None:
            runner.stop()
        return {}

    # ------------------------------------------------------------------ models
    def op_CreateModel(self, p: dict) -> dict:
        name = p["ModelName"]
        self._check_name(name, "modelName", _MODEL_NAME)
        if not p.get("PrimaryContainer") and not p.get("Containers"):
            raise _validation("CreateModel needs a PrimaryContainer (or Containers) with the model's Image "
                              "and ModelDataUrl.")
        for i, container in enumerate([p.get("PrimaryContainer") or {}] + list(p.get("Containers") or [])):
            check_environment(container.get("Environment"),
                              "CreateModel PrimaryContainer.Environment" if i == 0 else
                              f"CreateModel Containers[{i - 1}].Environment")
        with self.reg.lock:
            if self.reg.exists("model", name):
                raise _validation(f"Cannot create already existing model \"{self._arn('model', name)}\".")
            record = {**self._echo("CreateModel", "DescribeModel", p), "ModelName": name, "CreationTime": now(),
                      "EnableNetworkIsolation": p.get("EnableNetworkIsolation", False)}
            # SageMaker answers each container with its defaults filled in
            if record.get("PrimaryContainer"):
                record["PrimaryContainer"] = _container_defaults(record["PrimaryContainer"])
            if record.get("Containers"):
                record["Containers"] = [_container_defaults(c) for c in record["Containers"]]
            model_arn = self._new("model", name, record, p.get("Tags"))
        return {"ModelArn": model_arn}

    def op_DescribeModel(self, p: dict) -> dict:
        name = p["ModelName"]
        return _public(self._get("model", name, f"Could not find model \"{self._arn('model', name)}\"."))

    def op_DeleteModel(self, p: dict) -> dict:
        name = p["ModelName"]
        with self.reg.lock:
            self._get("model", name, f"Could not find model \"{self._arn('model', name)}\".")
            self.reg.delete("model", name)
        return {}

    def op_ListModels(self, p: dict) -> dict:
        return self._list("model", p, lambda r: {k: r[k] for k in ("ModelName", "ModelArn", "CreationTime")},
                          "Models")

    # ------------------------------------------------------------------ endpoint configs
    def op_CreateEndpointConfig(self, p: dict) -> dict:
        name = p["EndpointConfigName"]
        self._check_name(name, "endpointConfigName")
        variants = p["ProductionVariants"]
        if not variants:
            raise _validation("ProductionVariants must hold at least one variant.")
        seen = set()
        for v in variants:
            if v["VariantName"] in seen:
                raise _validation(f"Variant names must be unique; {v['VariantName']!r} appears twice.")
            seen.add(v["VariantName"])
            if not v.get("ModelName"):
                raise _validation(f"Variant {v['VariantName']!r} needs a ModelName.")
            if not self.reg.exists("model", v["ModelName"]):
                raise _validation(f"Could not find model \"{self._arn('model', v['ModelName'])}\".")
        with self.reg.lock:
            if self.reg.exists("endpoint-config", name):
                raise _validation("Cannot create already existing endpoint configuration "
                                  f"\"{self._arn('endpoint-config', name)}\".")
            resolved = []
            for v in variants:
                v = dict(v)
                v.setdefault("InitialVariantWeight", 1.0)
                resolved.append(v)
            record = {**self._echo("CreateEndpointConfig", "DescribeEndpointConfig", p),
                      "EndpointConfigName": name, "ProductionVariants": resolved, "CreationTime": now()}
            config_arn = self._new("endpoint-config", name, record, p.get("Tags"))
        return {"EndpointConfigArn": config_arn}

    def op_DescribeEndpointConfig(self, p: dict) -> dict:
        name = p["EndpointConfigName"]
        return _public(self._get("endpoint-config", name, "Could not find endpoint configuration "
                                                          f"\"{self._arn('endpoint-config', name)}\"."))

    def op_DeleteEndpointConfig(self, p: dict) -> dict:
        name = p["EndpointConfigName"]
        with self.reg.lock:
            self._get("endpoint-config", name, "Could not find endpoint configuration "
                                               f"\"{self._arn('endpoint-config', name)}\".")
            self.reg.delete("endpoint-config", name)
        return {}

    def op_ListEndpointConfigs(self, p: dict) -> dict:
        keys = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        return self._list("endpoint-config", p, lambda r: {k: r[k] for k in keys}, "EndpointConfigs")

    # ------------------------------------------------------------------ endpoints
    def _config_for_endpoint(self, config_name: str) -> dict:
        config = self._get("endpoint-config", config_name, "Could not find endpoint configuration "
                                                           f"\"{self._arn('endpoint-config', config_name)}\".")
        if len(config["ProductionVariants"]) != 1:
            raise _validation(f"Endpoint configuration {config_name!r} has {len(config['ProductionVariants'])} "
                              "production variants; the local control plane serves exactly one per endpoint.")
        return config

    def op_CreateEndpoint(self, p: dict) -> dict:
        name, config_name = p["EndpointName"], p["EndpointConfigName"]
        self._check_name(name, "endpointName")
        with self.reg.lock:
            if self.reg.exists("endpoint", name):
                raise _validation(f"Cannot create already existing endpoint \"{self._arn('endpoint', name)}\".")
            self._config_for_endpoint(config_name)
            t = now()
            record = {"EndpointName": name, "EndpointConfigName": config_name, "EndpointStatus": "Creating",
                      "CreationTime": t, "LastModifiedTime": t}
            endpoint_arn = self._new("endpoint", name, record, p.get("Tags"))
        self.endpoints.deploy(name, config_name, "create")
        return {"EndpointArn": endpoint_arn}

    def op_DescribeEndpoint(self, p: dict) -> dict:
        name = p["EndpointName"]
        return _public(self._get("endpoint", name, f"Could not find endpoint \"{self._arn('endpoint', name)}\"."))

    def op_UpdateEndpoint(self, p: dict) -> dict:
        name, config_name = p["EndpointName"], p["EndpointConfigName"]
        with self.reg.lock:
            rec = self._get("endpoint", name, f"Could not find endpoint \"{self._arn('endpoint', name)}\".")
            if rec["EndpointStatus"] != "InService":
                raise _validation(f"Cannot update in-progress endpoint \"{rec['EndpointArn']}\" "
                                  f"(status {rec['EndpointStatus']}); wait until it is InService.")
            self._config_for_endpoint(config_name)
            self.reg.update("endpoint", name, {"EndpointStatus": "Updating", "LastModifiedTime": now(),
                                               "FailureReason": None})
        self.endpoints.deploy(name, config_name, "update")
        return {"EndpointArn": rec["EndpointArn"]}

    def op_DeleteEndpoint(self, p: dict) -> dict:
        name = p["EndpointName"]
        with self.reg.lock:
            rec = self._get("endpoint", name, f"Could not find endpoint \"{self._arn('endpoint', name)}\".")
            if rec["EndpointStatus"] == "Deleting":
                raise _validation(f"Cannot delete endpoint \"{rec['EndpointArn']}\": it is already being deleted.")
            self.reg.update("endpoint", name, {"EndpointStatus": "Deleting", "LastModifiedTime": now()})
        self.endpoints.delete(name)
        return {}

    def op_ListEndpoints(self, p: dict) -> dict:
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        return self._list("endpoint", p, lambda r: {k: r[k] for k in keys}, "Endpoints", "EndpointStatus")

    # ------------------------------------------------------------------ transform jobs
    def op_CreateTransformJob(self, p: dict) -> dict:
        name = p["TransformJobName"]
        self._check_name(name, "transformJobName")
        src = p["TransformInput"].get("DataSource", {}).get("S3DataSource")
        if not src or src.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise _validation("TransformInput.DataSource.S3DataSource with S3DataType S3Prefix is required locally.")
        check_environment(p.get("Environment"), "CreateTransformJob Environment")
        with self.reg.lock:
            if self.reg.exists("transform-job", name):
                raise ApiError("ResourceInUse", f"Job name must be unique within an AWS account and region, and a "
                                                f"job with this name already exists ({self._arn('transform-job', name)})")
            if not self.reg.exists("model", p["ModelName"]):
                raise _validation(f"Could not find model \"{self._arn('model', p['ModelName'])}\".")
            record = {**self._echo("CreateTransformJob", "DescribeTransformJob", p),
                      "TransformJobName": name, "ModelName": p["ModelName"], "TransformJobStatus": "InProgress",
                      "TransformInput": p["TransformInput"], "TransformOutput": p["TransformOutput"],
                      "TransformResources": p["TransformResources"], "CreationTime": now()}
            job_arn = self._new("transform-job", name, record, p.get("Tags"))
        runner = TransformRunner(self.ctx, name)
        self._transform[name] = runner
        runner.start()
        return {"TransformJobArn": job_arn}

    def op_DescribeTransformJob(self, p: dict) -> dict:
        name = p["TransformJobName"]
        return _public(self._get("transform-job", name, f"Could not find requested job with name {name}"))

    def op_StopTransformJob(self, p: dict) -> dict:
        name = p["TransformJobName"]
        with self.reg.lock:
            rec = self._get("transform-job", name, f"Could not find requested job with name {name}",
                            code="ResourceNotFound")
            if rec["TransformJobStatus"] != "InProgress":
                return {}
            self.reg.update("transform-job", name, {"TransformJobStatus": "Stopping"})
        runner = self._transform.get(name)
        if runner is not None:
            runner.stop()
        return {}

    def op_ListTransformJobs(self, p: dict) -> dict:
        keys = ("TransformJobName", "TransformJobArn", "CreationTime", "TransformEndTime", "LastModifiedTime",
                "TransformJobStatus", "FailureReason")
        return self._list("transform-job", p, lambda r: {k: r[k] for k in keys if k in r},
                          "TransformJobSummaries", "TransformJobStatus")

    # ------------------------------------------------------------------ tags
    def _tagged(self, resource_arn: str) -> tuple[str, str]:
        found = self.reg.find_arn(resource_arn)
        if found is None:
            raise _validation(f"Resource {resource_arn} not found in account {ACCOUNT_ID}; "
                              "check the ARN (describe the resource to see it).")
        return found

    def op_AddTags(self, p: dict) -> dict:
        with self.reg.lock:
            kind, name = self._tagged(p["ResourceArn"])
            tags = {t["Key"]: t["Value"] for t in self.reg.get(kind, name).get("_Tags", [])}
            tags.update({t["Key"]: t.get("Value", "") for t in p["Tags"]})
            if len(tags) > 50:
                raise _validation("A resource can have at most 50 tags.")
            merged = [{"Key": k, "Value": v} for k, v in tags.items()]
            self.reg.update(kind, name, {"_Tags": merged})
        return {"Tags": merged}

    def op_DeleteTags(self, p: dict) -> dict:
        with self.reg.lock:
            kind, name = self._tagged(p["ResourceArn"])
            drop = set(p["TagKeys"])
            kept = [t for t in self.reg.get(kind, name).get("_Tags", []) if t["Key"] not in drop]
            self.reg.update(kind, name, {"_Tags": kept})
        return {}

    def op_ListTags(self, p: dict) -> dict:
        kind, name = self._tagged(p["ResourceArn"])
        tags = self.reg.get(kind, name).get("_Tags", [])
        start = int(p.get("NextToken") or 0)
        limit = int(p.get("MaxResults", 50))
        out: dict[str, Any] = {"Tags": tags[start:start + limit]}
        if start + limit < len(tags):
            out["NextToken"] = str(start + limit)
        return out

    # ------------------------------------------------------------------ lifecycle
    def restore(self) -> None:
        """After a restart: fail interrupted jobs, bring InService endpoints back up."""
        from .jobs import fail_interrupted, republish_metrics
        fail_interrupted(self.ctx)
        republish_metrics(self.ctx)
        for rec in self.reg.all("endpoint"):
            name = rec["EndpointName"]
            status = rec["EndpointStatus"]
            if status == "Deleting":
                self.reg.delete("endpoint", name)
            elif status in ("InService", "Creating", "Updating", "SystemUpdating"):
                # a restart of the stack is not a change of the endpoint: LastModifiedTime stays
                self.reg.update("endpoint", name, {"EndpointStatus": "SystemUpdating" if status != "Creating"
                                                   else "Creating"})
                self.endpoints.deploy(name, rec["EndpointConfigName"], "restore")
        self._restore_processing()
        self._restore_tuning()
        self._restore_pipelines()

    def shutdown(self) -> None:
        """Stop every child process: running jobs are stopped, endpoints' processes end."""
        from .jobs import SHUTDOWN_REASON
        self._shutdown_pipelines()   # first: an execution must not start new jobs while they stop
        self._shutdown_tuning()
        self._shutdown_processing()
        for runner in self._training.values():
            if runner.thread.is_alive():
                runner.abort(SHUTDOWN_REASON)
        for runner in self._transform.values():
            runner.stop()
        for runner in list(self._training.values()) + list(self._transform.values()):
            runner.thread.join(timeout=self.ctx.stop_grace_s + 15)
        self.endpoints.stop_all()
