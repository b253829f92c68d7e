"""Training side: data pipeline, model zoo, fit loop, evaluation. Needs the [train] extra."""
