"""Fixtures shared by the PyTorch tests (pytest puts this folder on sys.path: no __init__.py)."""
import pytest

from statex_cli import N_EXAMPLES, T_TOKENS, VOCAB, write_token_file


@pytest.fixture(scope="session")
def token_file(tmp_path_factory):
    """Tokens and labels for `statex grad` and the PyTorch models (statex_cli.write_token_file)."""
    return write_token_file(tmp_path_factory.mktemp("tokens") / "tokens.h5", VOCAB, T_TOKENS,
                            N_EXAMPLES)
