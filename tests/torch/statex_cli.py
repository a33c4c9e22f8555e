"""Running the statex binary from the torch tests ($STATEX_BIN, else ./build/statex), and the
token file they share. (Not a conftest.py: tests/python's modules import theirs as `conftest`,
and a second one in a run of both folders would shadow it.)"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
# The token file of the `token_file` fixture (conftest.py): vocabulary, length (not a multiple of
# any chunk length used), examples.
VOCAB, T_TOKENS, N_EXAMPLES = 96, 37, 3


def statex_bin() -> str:
    env = os.environ.get("STATEX_BIN")
    if env:
        assert os.path.exists(env), f"STATEX_BIN={env} does not exist"
        return env
    path = REPO / "build" / "statex"
    if not path.exists():
        pytest.skip(f"no statex binary: set STATEX_BIN or build {path}")
    return str(path)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([statex_bin(), *args], capture_output=True, text=True, timeout=300)


def check_run(*args: str) -> subprocess.CompletedProcess:
    r = run(*args)
    assert r.returncode == 0, f"statex {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def analysis(*args: str) -> subprocess.CompletedProcess:
    """`python3 -m analysis ARGS` from the repository root, as the docs show it."""
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def train_and_grad(d: pathlib.Path, train_opts: list[str], expand_opts: list[str] | None,
                   token_file: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Trains a tiny model into d/ck.h5 (expanded into d/expanded.h5 when expand_opts is given)
    and runs `statex grad` on the token file. Returns (checkpoint, grad file)."""
    ck = d / "ck.h5"
    check_run("train", *train_opts, "--out", str(d / "run.h5"), "--checkpoint-out", str(ck),
              "--quiet")
    if expand_opts:
        check_run("expand", "--checkpoint", str(ck), "--out", str(d / "expanded.h5"),
                  *expand_opts)
        ck = d / "expanded.h5"
    grad = d / "grad.h5"
    check_run("grad", "--checkpoint", str(ck), "--tokens", str(token_file), "--out", str(grad))
    return ck, grad


@pytest.fixture(scope="session")
def token_file(tmp_path_factory):
    """Tokens and labels for `statex grad` and the PyTorch models (write_token_file); import it
    into a test module to use it."""
    return write_token_file(tmp_path_factory.mktemp("tokens") / "tokens.h5", VOCAB, T_TOKENS,
                            N_EXAMPLES)


def write_token_file(path: pathlib.Path, vocab: int, T: int, n: int) -> pathlib.Path:
    """Random tokens [n, T] for `statex grad`; labels at ~30% of positions (-100 elsewhere);
    example 1 has no label at all, and the very last position is labelled."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(1234)
    tokens = rng.integers(0, vocab, (n, T)).astype(np.int32)
    labels = np.where(rng.random((n, T)) < 0.3, rng.integers(0, vocab, (n, T)), -100)
    labels[1] = -100
    labels[0, -1] = 5
    with h5py.File(path, "w") as f:
        f["tokens"] = tokens
        f["labels"] = labels.astype(np.int32)
    return path
