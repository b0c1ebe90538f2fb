"""`make bench`: every benchmark in turn; each prints JSON with side-by-side ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ("codecs", []),
    ("gateway_overhead", ["--requests", "1000", "--upload-mb", "500"]),
    ("tts_latency", []),
    ("asr_rtf", []),
    ("asr_vllm", []),
    ("live_voice", []),
    ("speaker_encoder", []),
]

if __name__ == "__main__":
    failed = 0
    for name, extra in SCRIPTS:
        print(f"==> {name}", flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / f"{name}.py"), *extra]).returncode
    sys.exit(1 if failed else 0)
