"""Shared fixtures: the PNCP simulator (fixtures_sim.py) and the S3 server (fixtures_s3.py)."""

from fixtures_s3 import *  # noqa: F403
from fixtures_sim import *  # noqa: F403
