"""scripts/readme_results.py: fills the README's marked blocks from a reproduce.sh folder, copies
the figures, and leaves the README untouched when a block cannot be filled."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("readme_results", REPO / "scripts" / "readme_results.py")
readme_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_results)

README = """# title
intro stays
<!-- reproduce:provenance -->
old provenance
<!-- /reproduce:provenance -->
between stays
<!-- reproduce:statex_arms -->
| old | table |
<!-- /reproduce:statex_arms -->
end stays
"""


def _out(tmp_path: Path, tables=("statex_arms",)) -> Path:
    out = tmp_path / "out"
    (out / "report" / "tables").mkdir(parents=True)
    (out / "report" / "figures").mkdir(parents=True)
    (out / "PROVENANCE.md").write_text("# Reproduction: full\n\n- commit: abc123 (clean)\n\n"
                                       "## How it was resumed\n\n- restarted once\n")
    for t in tables:
        (out / "report" / "tables" / f"{t}.md").write_text(f"| new | {t} |\n|---|---|\n")
    (out / "report" / "figures" / "statex_arms.png").write_bytes(b"png")
    return out


def test_fills_every_block_and_keeps_the_rest(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    out = _out(tmp_path)
    figs = tmp_path / "figs"
    assert readme_results.main([str(out), "--readme", str(readme), "--figures", str(figs)]) == 0
    text = readme.read_text()
    assert "old provenance" not in text and "| old | table |" not in text
    assert "- commit: abc123 (clean)\n\n**How it was resumed**\n\n- restarted once\n<!-- /reproduce:provenance -->" in text
    assert "## How" not in text  # its headings do not break the README's outline
    assert "Reproduction: full" not in text  # the title line is dropped
    assert "<!-- reproduce:statex_arms -->\n| new | statex_arms |\n|---|---|\n<!-- /reproduce:statex_arms -->" in text
    for kept in ("# title\nintro stays\n", "between stays\n", "end stays\n"):
        assert kept in text
    assert (figs / "statex_arms.png").read_bytes() == b"png"
    # Idempotent: a second fill gives the same text.
    assert readme_results.main([str(out), "--readme", str(readme), "--figures", str(figs)]) == 0
    assert readme.read_text() == text


def test_missing_table_leaves_readme_untouched(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    out = _out(tmp_path, tables=())
    assert readme_results.main([str(out), "--readme", str(readme), "--figures",
                                str(tmp_path / "figs")]) == 2
    assert readme.read_text() == README
    assert "statex_arms" in capsys.readouterr().err
    assert not (tmp_path / "figs").exists()


def test_refuses_a_folder_that_is_not_a_reproduction(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert readme_results.main([str(tmp_path), "--readme", str(readme)]) == 2
    assert "PROVENANCE.md not found" in capsys.readouterr().err
    assert readme.read_text() == README
