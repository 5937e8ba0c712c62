from dealab.engines.stepfunctions.engine import StepFunctionsEngine

__all__ = ["StepFunctionsEngine"]
