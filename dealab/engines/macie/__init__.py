from dealab.engines.macie.engine import MacieEngine
