"""CDK stacks of s2s-aws: storage, image, roles, pipeline (+ retraining triggers).

One stack per module; ``infra/app.py`` only wires them. Settings come from ``cdk.json`` context
(:class:`s2s_infra.config.InfraConfig`).
"""
