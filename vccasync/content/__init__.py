"""Content pieces: streamed downloads (``download``), the bulk pipeline and its counters
(``bulk``), safe file names (``paths``), the archive's manifest (``manifest``), and retention:
files hashed again (``verify``), the plan of what may be deleted (``retention``), the journal of
deletions (``journal``) and the purge that carries a plan out (``purge``); a sync's pieces go
through ``feed`` (``ContentFeed``).

Downloads are made through the client (``VccClient.download``, ``VccClient.download_all``).
The functions ``download.download`` and ``purge.purge`` are not re-exported here: each shares
its module's name, which a re-export would hide."""

from ._bulk import BulkProgress, Failure
from ._download import DownloadResult
from ._feed import ContentFeed
from ._journal import JOURNAL_NAME, JournalRecord, Outcome, read_records
from ._manifest import MANIFEST_NAME, Manifest, ManifestEntry
from ._paths import content_path, safe_name
from ._purge import PurgeProgress
from ._retention import Action, Decision, Piece, Plan, Reason, make_plan
from ._verify import FileCheck, hash_file, verify_files

__all__ = [
    "JOURNAL_NAME",
    "MANIFEST_NAME",
    "Action",
    "BulkProgress",
    "ContentFeed",
    "Decision",
    "DownloadResult",
    "Failure",
    "FileCheck",
    "JournalRecord",
    "Manifest",
    "ManifestEntry",
    "Outcome",
    "Piece",
    "Plan",
    "PurgeProgress",
    "Reason",
    "content_path",
    "hash_file",
    "make_plan",
    "read_records",
    "safe_name",
    "verify_files",
]
