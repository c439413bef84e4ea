"""`python -m homeloc.export.model_card`: a bad --report is refused in one line before anything is written."""

import pytest

from homeloc.export import model_card


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("no-equals-sign", "expected NAME=DIR"),
        ("Title=", "expected NAME=DIR"),
        ("Title={missing}", "holds no table.md (not a homeloc-evaluate output folder)"),
    ],
)
def test_bad_report_is_refused_before_writing(tmp_path, capsys, report, message):
    report = report.format(missing=tmp_path / "missing")
    with pytest.raises(SystemExit) as e:
        model_card.main(["--report", report, "--assets", str(tmp_path / "assets")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--report {report!r}: " in err and message in err
    assert not (tmp_path / "assets").exists()
