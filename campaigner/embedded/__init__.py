"""Throwaway PostgreSQL and Kafka-protocol (Tansu) servers on 127.0.0.1, run from pip packages.

Used by the demo and the test suite; every server is stopped and its files removed by stop().
"""

from campaigner.embedded.common import EmbeddedServerError, find_package_dir, free_port
from campaigner.embedded.kafka import EmbeddedKafka
from campaigner.embedded.postgres import EmbeddedPostgres

# The tests find the default temp dir's parent through this module.
from campaigner.embedded.postgres import _default_pg_base_dir as _default_pg_base_dir

__all__ = [
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "EmbeddedServerError",
    "find_package_dir",
    "free_port",
]
