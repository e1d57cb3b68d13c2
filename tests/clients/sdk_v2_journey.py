"""The classic seq2seq journey with the SageMaker Python SDK v2, unmodified, against ``s2s-aws local up``.

Run by tests/test_client_sdk_v2.py inside the SDK v2 venv (tests/client_venvs.py) with the local
stack's variables in the environment (AWS_ENDPOINT_URL..., S2S_BUCKET, S2S_ROLE_ARN) and:

    python sdk_v2_journey.py PREP_DIR RESULTS_FILE

PREP_DIR holds what ``s2s-aws preprocess`` wrote (train.rec, val.rec, vocab.src.json, vocab.trg.json).
After each step, one JSON line ``{"step": NAME, ...}`` is appended to RESULTS_FILE; a step that
raises ends the script (traceback on stderr, exit 1), so the last line tells how far it got.
The part between the README markers is the README's "With the SageMaker Python SDK" v2 snippet,
less the ``done(...)`` lines (tests/test_client_sdk_v2.py checks that they stay the same).
"""
import json
import os
import sys

PREP, RESULTS = sys.argv[1], sys.argv[2]


def done(step, **details):
    with open(RESULTS, "a") as f:
        f.write(json.dumps({"step": step, **details}, default=str) + "\n")


# --- README snippet (v2) start
import sagemaker
from sagemaker.analytics import TrainingJobAnalytics
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.serializers import JSONSerializer

# the SDK asks STS for the account at a fixed AWS URL: name the bucket and the role instead
sess = sagemaker.Session(default_bucket=os.environ["S2S_BUCKET"])
role = os.environ["S2S_ROLE_ARN"]
bucket, prefix = sess.default_bucket(), "seq2seq/sdk-v2"
channels = {"train": ["train.rec"], "validation": ["val.rec"], "vocab": ["vocab.src.json", "vocab.trg.json"]}
for channel, names in channels.items():
    for name in names:
        sess.upload_data(os.path.join(PREP, name), bucket, f"{prefix}/{channel}")
inputs = {channel: f"s3://{bucket}/{prefix}/{channel}" for channel in channels}
done("upload", inputs=inputs)

container = sagemaker.image_uris.retrieve("seq2seq", sess.boto_region_name)  # the built-in algorithm's image
estimator = Estimator(container, role, instance_count=1, instance_type="ml.p2.xlarge",
                      output_path=f"s3://{bucket}/{prefix}/output", sagemaker_session=sess,
                      hyperparameters={  # the classic notebook's, with max_num_batches (a demo knob) cut
                          "max_seq_len_source": "60", "max_seq_len_target": "60", "optimized_metric": "bleu",
                          "batch_size": "64", "checkpoint_frequency_num_batches": "1000",
                          "rnn_num_hidden": "512", "num_layers_encoder": "1", "num_layers_decoder": "1",
                          "num_embed_source": "512", "num_embed_target": "512", "checkpoint_threshold": "3",
                          "max_num_batches": "20"})
estimator.fit(inputs, logs=True)
job = estimator.latest_training_job.name
done("fit", job=job, model_data=estimator.model_data)

attached = Estimator.attach(job, sagemaker_session=sess)
done("attach", model_data=attached.model_data)

metrics = TrainingJobAnalytics(job, sagemaker_session=sess).dataframe()
done("analytics", rows=len(metrics), metric_names=sorted(set(metrics.get("metric_name", []))))

predictor = attached.deploy(initial_instance_count=1, instance_type="ml.m4.xlarge",
                            serializer=JSONSerializer(), deserializer=JSONDeserializer())
result = predictor.predict({"instances": [{"data": "i have forty two dogs"}, {"data": "we see seven cars"}]})
done("predict", endpoint=predictor.endpoint_name, result=result)

batch_in = sess.upload_string_as_file_body(
    "\n".join(json.dumps({"source": s}) for s in ("i have forty two dogs", "we see seven cars")) + "\n",
    bucket, f"{prefix}/batch-in/sentences.jsonl")
transformer = attached.transformer(instance_count=1, instance_type="ml.m4.xlarge",
                                   output_path=f"s3://{bucket}/{prefix}/batch-out", assemble_with="Line")
transformer.transform(batch_in, content_type="application/jsonlines", split_type="Line", wait=True, logs=False)
output = sess.read_s3_file(bucket, f"{prefix}/batch-out/sentences.jsonl.out")
done("transform", job=transformer.latest_transform_job.name, output=output)

predictor.delete_model()     # the model behind the endpoint (read from its endpoint config) ...
predictor.delete_endpoint()  # ... then the endpoint and its endpoint config
sess.delete_model(transformer.model_name)
done("delete", endpoint=predictor.endpoint_name, transform_model=transformer.model_name)
# --- README snippet (v2) end
