import struct

import pytest

from prunequant.report import load_run
from prunequant.report.plots import DPI, PLOTS, write_plots


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_every_plot_is_drawn_when_its_data_exists(synthetic_run, tmp_path):
    folder = tmp_path / "plots"
    (folder / "metric_vs_bits.png").parent.mkdir()
    (folder / "metric_vs_bits.png").write_bytes(b"an old plot")
    plots = write_plots(load_run(synthetic_run), folder)
    assert [plot.key for plot in plots] == list(PLOTS)
    assert sorted(path.name for path in folder.iterdir()) == sorted(f"{key}.png" for key in PLOTS)
    for plot in plots:
        width, height = _png_size(plot.path)
        assert width > 500 and height > 300 and plot.path.stat().st_size > 10_000
        assert plot.caption == PLOTS[plot.key][1]
    sizes = {plot.key: _png_size(plot.path) for plot in plots}
    assert sizes["metric_vs_prune"][0] == round(8.5 * DPI)  # figure width in inches x DPI
    assert sizes["metric_vs_size"] == (round(9.0 * DPI), round(4.8 * DPI))
    assert sizes["sensitivity"][0] == round(11.0 * DPI)


def test_a_run_without_results_draws_nothing(empty_run, tmp_path):
    assert write_plots(load_run(empty_run), tmp_path / "plots") == []


def test_runtime_plot_shows_deployed_speedups_and_no_gain_for_masked_zeros(synthetic_run):
    from prunequant.report.plots import runtime_vs_level
    from prunequant.timing import NO_SPEED_GAIN_DENSE

    data = load_run(synthetic_run)
    prune_axis, quant_axis = runtime_vs_level(data).axes[:2]
    assert [text.get_text() for text in prune_axis.texts] == [NO_SPEED_GAIN_DENSE]
    assert [line.get_label() for line in prune_axis.get_lines()] == ["original (torch eager fp32)"]
    assert "> 1 faster" in quant_axis.get_ylabel() and not quant_axis.texts
    speedups = sorted(row.get("speedup") for row in data.stage("post_quant"))
    plotted = sorted(
        y for line in quant_axis.get_lines() if "post quant" in line.get_label() for y in line.get_ydata()
    )
    assert plotted == pytest.approx(speedups)  # the fastest deployable form's speedup, as stored
