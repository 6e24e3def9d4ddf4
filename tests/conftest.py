"""Make the repository importable as ansible_collections.llmfleet.cluster (scripts/bootstrap
creates .collections/ansible_collections/llmfleet/cluster -> repository root)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
