"""Train, deploy, invoke and delete with the SageMaker Python SDK v3 (ModelTrainer, ModelBuilder),
unmodified, against ``s2s-aws local up``, with the SDK's IAM role validation on.

Run by tests/test_client_sdk_v3.py with the project's .venv python (sagemaker 3.27 is installed there)
and the local stack's variables in the environment (AWS_ENDPOINT_URL..., S2S_BUCKET, S2S_ROLE_ARN):

    python sdk_v3_journey.py PREP_DIR RESULTS_FILE

PREP_DIR holds what ``s2s-aws preprocess`` wrote. After each step one JSON line ``{"step": NAME, ...}``
is appended to RESULTS_FILE; a step that raises ends the script (traceback on stderr, exit 1).
The part between the README markers is the README's v3 snippet, less the ``done(...)`` lines.
"""
import json
import os
import sys

PREP, RESULTS = sys.argv[1], sys.argv[2]


def done(step, **details):
    with open(RESULTS, "a") as f:
        f.write(json.dumps({"step": step, **details}, default=str) + "\n")


# --- README snippet (v3) start
import logging

from sagemaker.core.helper.session_helper import Session
from sagemaker.core.resources import EndpointConfig
from sagemaker.serve import ModelBuilder
from sagemaker.train import ModelTrainer
from sagemaker.core.training.configs import Compute, InputData

logging.basicConfig(level=logging.INFO)  # train(logs=True) logs the training program's lines at INFO
# the SDK asks STS for the account at a fixed AWS URL: name the bucket and the role instead
sess = Session(default_bucket=os.environ["S2S_BUCKET"])
role = os.environ["S2S_ROLE_ARN"]
bucket, prefix = sess.default_bucket(), "seq2seq/sdk-v3"
channels = {"train": ["train.rec"], "validation": ["val.rec"], "vocab": ["vocab.src.json", "vocab.trg.json"]}
for channel, names in channels.items():
    for name in names:
        sess.upload_data(os.path.join(PREP, name), bucket, f"{prefix}/{channel}")
done("upload")

image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest"  # our container; local mode runs it
trainer = ModelTrainer(training_image=image, role=role, sagemaker_session=sess, base_job_name="s2s-sdk-v3",
                       compute=Compute(instance_type="ml.g5.xlarge", instance_count=1),
                       hyperparameters={"rnn_num_hidden": 64, "num_embed_source": 32, "num_embed_target": 32,
                                        "max_num_batches": 20},
                       input_data_config=[InputData(channel_name=c, data_source=f"s3://{bucket}/{prefix}/{c}/")
                                          for c in channels])
trainer.train(wait=True, logs=True)
done("train", job=trainer._latest_training_job.training_job_name)

builder = ModelBuilder(model=trainer, image_uri=image, role_arn=role, sagemaker_session=sess,
                       instance_type="ml.m5.xlarge")
model = builder.build()
endpoint = builder.deploy(endpoint_name="s2s-sdk-v3", initial_instance_count=1)
done("deploy", endpoint=endpoint.endpoint_name, model_data=model.primary_container.model_data_url)

response = endpoint.invoke(body=json.dumps({"instances": [{"data": "i have forty two dogs"}]}),
                           content_type="application/json", accept="application/json")
predictions = json.loads(response.body.read())["predictions"]
done("invoke", predictions=predictions)

endpoint.delete()
EndpointConfig.get(endpoint.endpoint_config_name, session=sess.boto_session).delete()
model.delete()
done("delete", endpoint=endpoint.endpoint_name)
# --- README snippet (v3) end
