"""A worker process of ``vlx batch --processes N``: ``python -m vlx.batch.child SOURCE OUT
OPTIONS.json``. The launching process wrote the options (``BatchOptions.to_json``) and set the
environment accelerate would (``RANK``, ``WORLD_SIZE``, ...); this runs the rank's shard."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vlx.batch.launch import run_distributed
from vlx.batch.options import BatchOptions
from vlx.errors import VlxError


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: python -m vlx.batch.child SOURCE OUT OPTIONS.json\n")
        return 2
    source, out, spec = argv
    options = BatchOptions.from_json(json.loads(Path(spec).read_text(encoding="utf-8")))
    try:
        run_distributed(Path(source), Path(out), options)
    except VlxError as e:                # one line for the parent's error message; exit non-zero
        sys.stderr.write(f"vlx: error: {(str(e).strip() or type(e).__name__).splitlines()[0]}\n")
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
