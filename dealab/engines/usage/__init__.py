"""AWS's usage metrics of services no other engine takes: SQS queues and DynamoDB tables."""

from dealab.engines.usage.engine import UsageEngine
