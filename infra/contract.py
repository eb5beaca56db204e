"""What the program and the policy pack agree on: resource types, the labels the program sets and the
pack trusts, and what counts as public or as a Cloud KMS key. Standard library only, so the pack
(its own virtualenv, without msgspec or google-cloud) imports it too."""

from __future__ import annotations

import re

COMPONENT_TYPE = "tenant-bigquery:bigquery:DatasetWithTables"
DATASET_TYPE = "gcp:bigquery/dataset:Dataset"
TABLE_TYPE = "gcp:bigquery/table:Table"

# Principals that open data to anyone (CIS GCP 7.1), compared in lower case.
PUBLIC_PRINCIPALS = frozenset({"allusers", "allauthenticatedusers"})
# A Cloud KMS key (not a key version); group 1 is its location.
KMS_KEY = re.compile(r"projects/[^/\s]+/locations/([^/\s]+)/keyRings/[^/\s]+/cryptoKeys/[^/\s]+\Z")

# Table labels the program sets itself and the policy pack trusts; a declaration may not set them.
RETENTION_FOREVER = ("retention", "forever")  # partitioning keep_forever: true
DATA_LOSS_APPROVED = ("data-loss", "approved")  # the table is in tenant-bigquery:approveDataLoss
