"""A classroom: one front door routing each learner's requests, by access key, to that learner's own stack."""
