"""make report: the chart from a known CSV, and clear errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from reporting.chart import CountRow, ReportError, read_table, render_chart
from services.settings import PROJECT_ROOT

CSV = "month,logins,successful,failed\n2024-01,100,90,10\n2024-02,250,240,10\n2024-03,40,40,0\n"


def make_report(source, target) -> subprocess.CompletedProcess[str]:
    """``make report`` as the Makefile runs it."""
    command = [
        sys.executable,
        "-m",
        "reporting.chart",
        "--input",
        str(source),
        "--output",
        str(target),
    ]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)


def test_chart_has_a_stacked_bar_pair_per_month_and_the_totals_in_the_title(tmp_path):
    source = tmp_path / "monthly_logins.csv"
    source.write_text(CSV)
    period, rows = read_table(source)
    assert period.key == "month"
    assert rows[1] == CountRow("2024-02", 250, 240, 10)
    figure = render_chart(rows, period)
    axes = figure.axes[0]
    bars = [(round(p.get_y()), round(p.get_height())) for p in axes.patches]
    # Successful bars from zero, failed bars stacked on top of them.
    assert bars == [(0, 90), (0, 240), (0, 40), (90, 10), (240, 10), (40, 0)]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["2024-01", "2024-02", "2024-03"]
    assert axes.get_title() == (
        "Logins per calendar month, 2024-01 to 2024-03: 390 logins, 20 failed (5.1%)"
    )
    rate = figure.axes[1].lines[0].get_ydata()
    assert list(rate) == pytest.approx([0.1, 0.04, 0.0])


def test_make_report_writes_a_readme_sized_png(tmp_path):
    source, target = tmp_path / "in.csv", tmp_path / "chart" / "out.png"
    source.write_text(CSV)
    result = make_report(source, str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Wrote {target} (3 months, 390 logins).\n"
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size == (1200, 540)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist. Run `make demo`"),
        ("", "is empty"),
        ("month,logins,successful,failed\n", "has a header but no months"),
        ("date,count\n2024-01,3\n", "has the header 'date,count'"),
        ("month,logins,successful,failed\n2024-01,many,1,1\n", "line 2: .* is not a row"),
        ("month,logins,successful,failed\n2024-1,5,4,1\n", "'2024-1' is not a month"),
        ("month,logins,successful,failed\n2024-01,5,1,1\n", "line 2: inconsistent row"),
    ],
)
def test_bad_input_is_explained(tmp_path, content, message):
    source = tmp_path / "monthly_logins.csv"
    if content is not None:
        source.write_text(content)
    with pytest.raises(ReportError, match=message):
        read_table(source)
    result = make_report(source, str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert not (tmp_path / "x.png").exists()


def test_a_weekly_table_is_charted_per_iso_week(tmp_path):
    source = tmp_path / "weekly_logins.csv"
    source.write_text("week,logins,successful,failed\n2026-W52,10,9,1\n2026-W53,30,27,3\n")
    period, rows = read_table(source)
    figure = render_chart(rows, period)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["2026-W52", "2026-W53"]
    assert (
        axes.get_title() == "Logins per ISO week, 2026-W52 to 2026-W53: 40 logins, 4 failed (10.0%)"
    )
    assert axes.get_ylabel() == "logins per week"
    result = make_report(source, str(tmp_path / "w.png"))
    assert result.stdout == f"Wrote {tmp_path / 'w.png'} (2 weeks, 40 logins).\n"


def test_make_report_reads_the_jobs_database_too(tmp_path):
    from tests.support.database import written_database

    url = written_database(tmp_path)
    target = tmp_path / "from-db.png"
    result = subprocess.run(
        [sys.executable, "-m", "reporting.chart", "--db-url", url, "--output", str(target)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Wrote {target} (2 weeks, 158 logins).\n"
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "reporting.chart", "--db-url", missing],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: No database yet at {missing}")
