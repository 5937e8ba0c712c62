"""The validation engine: each request its rules name is checked before any other engine acts on it.

moto accepts much that AWS refuses: a 2,000-byte key, a bucket called `MyBucket`, 30 writes in one
BatchWriteItem, Kinesis `Data` that is not base64, a bucket policy with a typo in it. A learner who gets
away with these locally fails on a real account, and a stored policy nobody can evaluate denies everything
later. The rules (rules.RULES) are a table of (service, operation) → validators; the first refusal is
the answer, in the error shape of the service's protocol.
"""

from __future__ import annotations

from dealab.wire.engine import Engine
from dealab.engines.validation.rules import RULES
from dealab.wire.messages import AwsRequest, AwsResponse


class ValidationEngine(Engine):
    name = "validation"
    operations = dict.fromkeys(RULES, "_validate")

    def _validate(self, request: AwsRequest) -> AwsResponse:
        for validator in RULES[(request.service, request.operation)]:
            refusal = validator(request)
            if refusal is not None:
                return refusal
        return request.send_on()
