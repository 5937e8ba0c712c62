"""dealab: an offline, hands-on lab environment for the AWS Certified Data Engineer – Associate exam."""

__version__ = "0.1.0"
