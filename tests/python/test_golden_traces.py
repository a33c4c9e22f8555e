"""Portable determinism: the committed golden traces (tests/golden, made by
scripts/golden_traces.py) reproduced bit for bit by the binary under test (docs/reproducibility.md).

Needs STATEX_BIN (scripts/test.sh sets it) built in the portable flavour, the default; a native
build skips with the reason. The unit tests of the comparison run everywhere."""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("golden_traces", REPO / "scripts" / "golden_traces.py")
golden_traces = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden_traces)


def _load(name: str) -> dict:
    return json.loads((golden_traces.GOLDEN_DIR / f"{name}.json").read_text())


def test_every_case_has_a_committed_trace_and_nothing_else():
    committed = {p.stem for p in golden_traces.GOLDEN_DIR.glob("*.json")}
    assert committed == set(golden_traces.CASES)


def test_traces_were_made_by_a_portable_build():
    for name in golden_traces.CASES:
        assert _load(name)["flavour"] == "portable", name


def test_first_difference_names_the_earliest_changed_bit():
    golden = _load("gla")
    assert golden_traces.first_difference(golden, copy.deepcopy(golden)) is None
    changed = copy.deepcopy(golden)
    i = len(changed["grad_norm"]) // 2
    changed["grad_norm"][i] = f"{int(changed['grad_norm'][i], 16) ^ 1:08x}"  # last mantissa bit
    msg = golden_traces.first_difference(golden, changed)
    assert msg is not None and msg.startswith(f"grad_norm at step {golden['step'][i]}")
    changed = copy.deepcopy(golden)
    changed["params_sha256"] = "0" * 64
    assert "SHA-256" in golden_traces.first_difference(golden, changed)


@pytest.fixture(scope="module")
def binary() -> str:
    path = os.environ.get("STATEX_BIN")
    if not path or not Path(path).exists():
        pytest.skip("STATEX_BIN is not set to a built statex binary (scripts/test.sh sets it)")
    return path


@pytest.mark.parametrize("name", list(golden_traces.CASES))
def test_portable_build_reproduces_golden_trace(binary, name, tmp_path):
    got = golden_traces.run_case(binary, name, tmp_path)
    if got["flavour"] != "portable":
        pytest.skip(f"STATEX_BIN is the {got['flavour']} flavour: its bits are machine-specific "
                    "by design; golden traces are checked in the portable flavour (the default)")
    diff = golden_traces.first_difference(_load(name), got)
    assert diff is None, (f"{name}: {diff}. The arithmetic changed; if that is intended, remake "
                          "the traces with `python3 scripts/golden_traces.py --write` and say why "
                          "in the commit")


def test_portable_build_reproduces_golden_trace_on_another_cpu_model(binary, tmp_path):
    """The same binary under QEMU's Haswell model: another cpuid (no AVX-512, another brand and
    cache description), so glibc's and Eigen's CPU-dependent choices are made for another CPU.
    One case (about 80 s under emulation); the full set: scripts/golden_traces.py --emulate."""
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-x86_64 is not installed (apt install qemu-user; .ci/run installs it)")
    got = golden_traces.run_case(binary, "gla", tmp_path, ("qemu-x86_64", "-cpu", "Haswell"))
    if got["flavour"] != "portable":
        pytest.skip(f"STATEX_BIN is the {got['flavour']} flavour")
    assert "Haswell" in got["made_by"]["cpu_model"]  # it really ran as another CPU
    assert golden_traces.first_difference(_load("gla"), got) is None


def test_portable_binary_has_no_approximate_math_instructions(binary):
    """rcpps / rsqrtps (and their AVX forms) return vendor-specific approximations: Intel and AMD
    differ in the last bits, so one of them anywhere would break portability."""
    if shutil.which("objdump") is None:
        pytest.skip("objdump is not installed (binutils)")
    flavour = subprocess.run([binary, "info"], capture_output=True, text=True).stdout
    if "flavour    portable" not in flavour:
        pytest.skip("not the portable flavour")
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True,
                         text=True, check=True).stdout
    bad = sorted({line.split()[1] for line in asm.splitlines()
                  if len(line.split()) > 1 and line.split()[1].startswith(("vrsqrt", "vrcp", "rsqrt", "rcp"))})
    assert not bad, f"approximate instructions in the portable binary: {bad}"
