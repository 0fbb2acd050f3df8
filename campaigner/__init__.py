"""campaigner: scheduled campaigns from PostgreSQL cohorts into Kafka."""

__version__ = "0.1.0"
