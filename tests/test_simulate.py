"""`gemini simulate`: a figure's data, drawn by the installed plot_figures.py."""
import json
import subprocess

from conftest import GEMINI


def simulate(*args):
    return subprocess.run([GEMINI, "simulate", *args], capture_output=True, text=True, timeout=300)


def test_a_figure_is_drawn_from_its_data(tmp_path):
    png, data = tmp_path / "recovery.png", tmp_path / "recovery.json"
    out = simulate("--figure", "recovery", "--max-machines", "12", "--plot", str(png),
                   "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(data.read_text())["figure"] == "recovery"
    assert f"wrote {png}" in out.stdout


def test_a_failing_plot_script_is_a_clear_error(tmp_path):
    out = simulate("--figure", "recovery", "--max-machines", "12", "--plot",
                   str(tmp_path / "x.png"), "--plot-script", str(tmp_path / "missing.py"))
    assert out.returncode == 1
    assert "plot script" in out.stderr and "failed" in out.stderr, out.stderr
    assert not (tmp_path / "x.png").exists()
