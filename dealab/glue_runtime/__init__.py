"""The Python path root of the job runtime: the Spark worker puts this folder on sys.path so that learner
scripts find our `awsglue` package exactly as they would on AWS Glue. Nothing in the gateway imports it."""
