"""Behavioural parity of every documented function with the predecessor
(``jwst-reffiles==1.0.1``), called in its own virtualenv on the same inputs.

Runs when the predecessor's virtualenv is there (``make parity`` builds it in
``.venv-predecessor``; ``JWST_REFFILES_PREDECESSOR`` may name another python);
skipped otherwise.  A case with a deviation passes when its check of ours holds
(docs/deviations.md says why each differs); every other case must match: values,
dtypes, shapes, NaN placement, exceptions raised, FITS files written.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from tests.parity.cases import CASES, DEVIATIONS
from tests.parity.data import make_data
from tests.parity.run import compare_results, run_cases

ROOT = Path(__file__).resolve().parents[2]


def predecessor_python() -> str | None:
    given = os.environ.get("JWST_REFFILES_PREDECESSOR")
    if given:
        return given
    python = ROOT / ".venv-predecessor" / "bin" / "python"
    return str(python) if (ROOT / ".venv-predecessor" / ".installed").exists() else None


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    python = predecessor_python()
    if python is None:
        pytest.skip("the predecessor's virtualenv is not built (make parity builds it)")
    work = tmp_path_factory.mktemp("parity")
    data = make_data(work / "data")
    return (run_cases(sys.executable, CASES, data, work / "ours"),
            run_cases(python, CASES, data, work / "predecessor"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parity(case, results):
    ours, theirs = (r[case.id] for r in results)
    if case.deviation:
        DEVIATIONS[case.deviation](ours, theirs)
    else:
        diff = compare_results(case, ours, theirs)
        assert diff is None, diff


def test_every_documented_function_has_a_case():
    spec = (ROOT.parent / "shared" / "spec" / "jwst_reffiles_documentation.txt")
    if not spec.exists():
        pytest.skip("the spec is not beside this checkout")
    documented = set(re.findall(r"^jwst_reffiles\.([\w.]+)\(", spec.read_text(), re.M))
    assert documented - {c.func for c in CASES} == set()


def test_every_deviation_is_documented_and_used():
    text = (ROOT / "docs" / "deviations.md").read_text()
    listed = set(re.findall(r"^### `([\w-]+)`", text, re.M))
    used = {c.deviation for c in CASES if c.deviation}
    assert listed == set(DEVIATIONS) == used
