"""Run every case through ours and the predecessor: ``python -m tests.parity.run
PREDECESSOR_PYTHON WORKDIR`` prints one line per case (used by the tests, and by hand)."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("worker.py")


def run_cases(python: str, cases, datadir: Path, workdir: Path, timeout: float = 900) -> dict:
    """Results of ``cases`` called under ``python`` (a clean environment: the
    predecessor's imports must not see ours)."""
    import os
    workdir.mkdir(parents=True, exist_ok=True)
    spec = workdir / "cases.pkl"
    out = workdir / "results.pkl"
    with open(spec, "wb") as fh:
        pickle.dump([(c.id, c.dotted, c.args, c.kwargs) for c in cases], fh)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(MPLBACKEND="Agg", CRDS_SERVER_URL="https://localhost:1", PYTHONWARNINGS="ignore")
    python = os.path.abspath(python)          # not resolve(): a venv python is a link
    proc = subprocess.run([python, str(WORKER), str(spec), str(out), str(datadir),
                           str(workdir / "calls")], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=str(workdir))
    if proc.returncode != 0:
        raise RuntimeError(f"the parity worker under {python} failed:\n{proc.stderr[-3000:]}")
    with open(out, "rb") as fh:
        return pickle.load(fh)


def main(predecessor: str, workdir: str):
    from tests.parity.cases import CASES
    from tests.parity.data import make_data
    work = Path(workdir)
    data = make_data(work / "data")
    ours = run_cases(sys.executable, CASES, data, work / "ours")
    theirs = run_cases(predecessor, CASES, data, work / "predecessor")
    from tests.parity.cases import DEVIATIONS
    for case in CASES:
        a, b = ours[case.id], theirs[case.id]
        diff = compare_results(case, a, b)
        if case.deviation:
            try:
                DEVIATIONS[case.deviation](a, b)
                print(f"deviation {case.id}: {case.deviation} holds")
            except Exception as exc:                  # noqa: BLE001 - reported
                print(f"DEVIATION FAILS {case.id}: {case.deviation}: {exc!r}")
            continue
        print(f"{'DIFF' if diff else 'same'} {case.id}: {diff or ''}")


def compare_results(case, a, b):
    from tests.parity.compare import compare, compare_hdus
    if a[0] != b[0]:
        def say(r):
            return f"raised {r[1]}: {r[2][:200]}" if r[0] == "raised" else "returned"
        return f"ours {say(a)}; predecessor {say(b)}"
    if a[0] == "raised":
        if not case.raises:
            return f"both raised: ours {a[1]}: {a[2][:200]}; predecessor {b[1]}: {b[2][:200]}"
        return None if a[1] == b[1] else f"raised {a[1]} vs {b[1]}"
    if case.raises:
        return "both returned; the case expects an exception"
    d = compare(a[1], b[1], "result", case.rtol, case.atol, case.dtype)
    if d:
        return d
    fa, fb = a[2], b[2]
    if sorted(fa) != sorted(fb):
        return f"files written: {sorted(fa)} vs {sorted(fb)}"
    for name in fa:
        if isinstance(fa[name], list) and isinstance(fb[name], list):
            d = compare_hdus(fa[name], fb[name], name, case.rtol, case.atol, case.dtype)
            if d:
                return d
    return None


if __name__ == "__main__":
    main(*sys.argv[1:3])
