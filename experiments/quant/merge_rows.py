"""Merge the rows (and reference comparison) of several `bench/quant_table.py` outputs for one model into one
table, e.g. rows measured by parallel single-method runs that each reused the same earlier table:

    python experiments/quant/merge_rows.py experiments/quant/smollm2.json A.json B.json --out experiments/quant/smollm2.md

The first file is the base; later files add (method, bits) rows it lacks and, if it has none, their reference
comparison. Writes OUT (markdown, via the bench's own formatter) and OUT with .json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def merge(tables: list[dict]) -> dict:
    out = dict(tables[0])
    rows = list(out["rows"])
    seen = {(r["method"], r["bits"]) for r in rows}
    for t in tables[1:]:
        for r in t["rows"]:
            if (r["method"], r["bits"]) not in seen:
                rows.append(r)
                seen.add((r["method"], r["bits"]))
        if not out.get("reference") and t.get("reference"):
            out["reference"] = t["reference"]
    out["rows"] = rows
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tables", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import quant_table

    loaded = []
    for p in args.tables:
        d = json.loads(Path(p).read_text())
        loaded.append(d[-1] if isinstance(d, list) else d)
    merged = merge(loaded)
    cmd = "python experiments/quant/merge_rows.py " + " ".join(sys.argv[1:])
    Path(args.out).write_text(quant_table.markdown([merged], cmd))
    Path(args.out).with_suffix(".json").write_text(json.dumps([merged], indent=1))
    print(f"wrote {args.out}: {len(merged['rows'])} rows, reference {'yes' if merged.get('reference') else 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
