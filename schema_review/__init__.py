"""Schema review: classify SQL migrations by what the database really does (lock, rebuild,
copy, scan, or break the release still running), weigh it against table sizes, and gate deploys
until a reviewer approves.  Plain Python, no Buildbot import.
"""
from schema_review.approvals import ApprovalStore
from schema_review.model import Finding, finding_key, normalize_statement
from schema_review.prepush import pre_push_check
from schema_review.review import Report, Reviewer, ReviewSettings, review_texts
from schema_review.sizes import LiveDatabase, SizesFile, SizeSource

__all__ = ["ApprovalStore", "Finding", "LiveDatabase", "Report", "ReviewSettings", "Reviewer",
           "SizeSource", "SizesFile", "finding_key", "normalize_statement", "pre_push_check",
           "review_texts"]
