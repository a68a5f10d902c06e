"""The measured sections of docs/PERFORMANCE.md that tests write, and that make bench keeps."""

from __future__ import annotations

from bench.report import with_kept_sections
from scripts import dashboard_report, docker_report


def test_the_dashboard_section_reports_the_browser_figures_against_the_target():
    fast = dashboard_report.render({"chart_shown_ms": 730, "table_shown_ms": 720, "periods": 13})
    slow = dashboard_report.render({"chart_shown_ms": 1001, "table_shown_ms": 990, "periods": 2})
    assert "| Navigation start to the chart drawn | 730 ms | <= 1,000 ms | yes | " in fast
    assert "table drawn at 720 ms; 13 periods |" in fast
    assert "| 1,001 ms | <= 1,000 ms | **no** |" in slow
    assert fast.startswith(dashboard_report.START) and fast.endswith(dashboard_report.END)


def test_a_section_is_replaced_in_place_or_appended():
    start, end = dashboard_report.START, dashboard_report.END
    page = f"# Performance\n\n{start}\nold\n{end}\n\n## After\n"
    replaced = docker_report.replace_section(page, f"{start}\nnew\n{end}", start, end)
    assert replaced == f"# Performance\n\n{start}\nnew\n{end}\n\n## After\n"
    appended = docker_report.replace_section("# Performance\n", f"{start}\nnew\n{end}", start, end)
    assert appended == f"# Performance\n\n{start}\nnew\n{end}\n"


def test_make_bench_keeps_the_docker_and_dashboard_sections(tmp_path):
    page = tmp_path / "PERFORMANCE.md"
    docker = f"{docker_report.START}\ndocker figures\n{docker_report.END}"
    dashboard = f"{dashboard_report.START}\npage load\n{dashboard_report.END}"
    page.write_text(f"# old run\n\n{docker}\n\n{dashboard}\n")
    kept = with_kept_sections("# new run\n", page)
    assert kept == f"# new run\n\n{docker}\n\n{dashboard}\n"
    assert with_kept_sections("# new run\n", tmp_path / "missing.md") == "# new run\n"
