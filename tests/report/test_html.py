import json
import re

from prunequant.cli.main import main
from prunequant.report import write_report
from prunequant.report.plots import PLOTS


def test_report_html_is_one_self_contained_file(synthetic_report):
    page = synthetic_report["html"].read_text()
    images = re.findall(r'<img alt="([^"]+)" src="([^"]{0,30})', page)
    assert [key for key, _ in images] == [
        "metric_vs_prune",
        "metric_vs_bits",
        "runtime_vs_level",
        "metric_vs_size",
        "metric_vs_latency",
        "structured",
        "sensitivity",
    ]
    assert all(src.startswith("data:image/png;base64,") for _, src in images)
    assert not re.search(r'(src|href)="(?!data:)', page) and "http" not in page
    assert page.count('<table class="sortable">') == 10 and page.count("<script>") == 1
    for title in (
        "Table I. Profile",
        "Table II. Post- and aware-training",
        "Table 4. Operating memory",
        "Automatic search",
        "ONNX export",
        "Runtime benchmark",
        "All trials",
    ):
        assert title in page
    assert page.count('<tr class="hl">') == 1 + 1 + 2 + 1  # TOTAL, best in Table II, Pareto x2, best in all
    assert (
        "<details><summary>Recipe</summary><pre>[task]\nmax_drop = 0.05  # &lt;budget&gt;\n</pre></details>"
        in page
    )


def test_report_markdown_links_the_plots_and_holds_every_table(synthetic_run, synthetic_report):
    text = synthetic_report["markdown"].read_text()
    assert text.startswith(
        "# Compression report: synthetic\n\n- 18 trials: 16 done, 1 stopped early, 1 failed."
    )
    for key in PLOTS:
        assert f"![{key}](plots/{key}.png)" in text and (synthetic_run / "plots" / f"{key}.png").is_file()
    assert text.count("\n### ") == 11  # 10 tables (the deployable forms and seed 003 Table 3 too), recipe
    assert text.endswith("### Recipe\n\n```toml\n[task]\nmax_drop = 0.05  # <budget>\n```\n")
    assert "| Combined | 50% | 4 bits |" in text.replace("**", "")


def test_report_command_writes_the_report_and_refuses_other_folders(synthetic_run, tmp_path, capsys):
    assert main(["report", str(synthetic_run), "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert paths["html"] == str(synthetic_run / "report.html")
    assert paths["markdown"] == str(synthetic_run / "report.md")
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_a_run_whose_baseline_failed_still_gets_a_report(empty_run):
    page = write_report(empty_run)["html"].read_text()
    assert "1 trials: 0 done, 0 stopped early, 1 failed." in page and "DataError: no data" in page
