#!/bin/bash
# Test stand-in for Bitnami's Kafka entrypoint: the run script sets up and starts the
# broker; any other command runs as given (Bitnami's pass-through).
set -euo pipefail
exec "$@"
