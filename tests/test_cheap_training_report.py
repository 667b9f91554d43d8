"""The cheap-training report rewrites only its own section of docs/benchmarks.md."""
import json

from benchmarks import cheap_training


def test_report_replaces_only_its_section_and_states_the_target(tmp_path, monkeypatch):
    results = json.loads(cheap_training.RESULTS.read_text())
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Others' report\n\nkept text\n")
    monkeypatch.setattr(cheap_training, "DOC", doc)
    cheap_training.write_doc(cheap_training.report(results))
    first = doc.read_text()
    cheap_training.write_doc(cheap_training.report(results))
    assert doc.read_text() == first  # rewriting replaces the section, does not append another
    assert first.startswith("# Others' report\n\nkept text\n") and first.count(cheap_training.BEGIN) == 1
    assert "fewer FLOPs" in first and "| plain |" in first
