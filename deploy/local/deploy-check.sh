#!/usr/bin/env bash
# Checks the deployment files offline: every Kubernetes manifest against the API
# schemas (kubernetes-validate, from PyPI, installed when missing), and the AWS
# IAM policies and bucket rules against what the code calls and applies.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi
python3 "$repo/deploy/kubernetes/validate.py"
python3 "$repo/deploy/aws/check.py"
