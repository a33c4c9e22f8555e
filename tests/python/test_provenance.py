"""Provenance grouping (statex_analysis/provenance.py): runs made alike share one row, rows do not
depend on input order, files without the fields say so."""
from __future__ import annotations

import h5py

from statex_analysis import provenance
from h5_writer import write_run


def _set_build(path, **attrs):
    with h5py.File(path, "a") as f:
        for k, v in attrs.items():
            f.require_group("build").attrs[k] = v


def test_machines_table_groups_and_is_order_independent(tmp_path):
    paths = []
    for i, cpu in enumerate(["CPU B", "CPU A", "CPU B"]):
        p = tmp_path / f"r{i}.h5"
        write_run(p)
        _set_build(p, cpu_model=cpu, flavour="portable", blas="eigen 3.4.0 GEMM")
        paths.append(str(p))
    forward = provenance.machines_table(paths)
    backward = provenance.machines_table(paths[::-1])
    assert forward.equals(backward)
    assert list(forward["cpu_model"]) == ["CPU A", "CPU B"]
    assert list(forward["runs"]) == [1, 2]
    assert set(forward["libc"]) == {provenance.NOT_RECORDED}
    text = provenance.machines_markdown(forward)
    assert "provenance 2: 2 result files" in text and "cpu_model: CPU B" in text
