"""The same report gets the same flags and messages in every process (no dependence on hash order)."""

import json
import os
import subprocess
import sys

SCRIPT = """
import json
from medmm.reports import check
reports = [
    "FINDINGS: Small bilateral efusions. No pneumothorx. Mild cardiomegaly.\\n\\nIMPRESSION: Small bilateral efusions.",
    "FINDINGS: The lungs are clera. Heart size is normall. No focal consolidaton.\\n\\nIMPRESSION: No acute disese.",
    "FINDINGS: Right lower lobe opasity. Degenrative changes of the spine.\\n\\nIMPRESSION: Right lower lobe pnuemonia.",
]
print(json.dumps([[(f.type, f.start, f.end, f.explanation) for f in check(r).flags] for r in reports]))
"""


def test_flags_do_not_depend_on_the_hash_seed():
    outs = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        outs.append(json.loads(res.stdout))
    assert any(outs[0]), "the misspellings must be flagged at all"
    assert outs[0] == outs[1] == outs[2]
