"""Peak memory while ingesting a FHIR AuditEvent file, sampled as the file is read.

Shows whether memory stays flat as the file grows. Generate the file first with
``benchmarks/ingest_rate.py`` (it caches ``benchmarks/out/events-<N>-<seed>.ndjson``).

Run: ``.venv/bin/python benchmarks/ingest_memory.py benchmarks/out/events-1000000-1.ndjson``
"""

from __future__ import annotations

import resource
import shutil
import sys
import tempfile
from pathlib import Path

from custodes.bootstrap import tune_memory_allocator
from custodes.ingest.fhir_audit import FhirAuditEventReader
from custodes.storage.archive import ParquetArchive


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    source = Path(sys.argv[1])
    tune_memory_allocator()  # as `custodes ingest` does
    target = Path(tempfile.mkdtemp(prefix="custodes-memory-"))
    try:
        archive = ParquetArchive(target)
        events = 0
        for block, chunk in enumerate(FhirAuditEventReader().read(source)):
            archive.write_access_events(chunk.access)
            events += chunk.access.height
            if block % 4 == 0:
                print(f"{events:>10,} events  peak RSS {peak_mb():,.0f} MB", flush=True)
        archive.flush()
        print(f"{events:>10,} events  peak RSS {peak_mb():,.0f} MB (after the last flush)")
    finally:
        shutil.rmtree(target, ignore_errors=True)


if __name__ == "__main__":
    main()
