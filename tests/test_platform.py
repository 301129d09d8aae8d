"""The installed package on torch 2.x: one version everywhere, the torch range
checked at import, and torch's distributed APIs the integrations build on."""
import importlib.metadata
import subprocess
import sys

import pytest

from conftest import GEMINI, PYTHON


def test_one_version_number():
    import gemini
    cli = subprocess.run([GEMINI, "--version"], check=True, capture_output=True,
                         text=True).stdout.split()
    sub = subprocess.run([GEMINI, "version"], check=True, capture_output=True, text=True).stdout
    meta = importlib.metadata.version("gemini-checkpoint")
    assert cli == ["gemini", gemini.__version__]
    assert sub.split() == cli
    assert meta == gemini.__version__


def test_installed_not_source_tree():
    # Tests run the installed package: the native module is in site-packages.
    import gemini._gemini
    assert "site-packages" in gemini._gemini.__file__, gemini._gemini.__file__


def test_torch_2_apis_import():
    import torch
    from torch.distributed.checkpoint import state_dict  # noqa: F401
    from torch.distributed.checkpoint.stateful import Stateful  # noqa: F401
    from torch.distributed.fsdp import fully_shard  # noqa: F401
    from torch.distributed.tensor import DTensor  # noqa: F401
    assert int(torch.__version__.split(".")[0]) >= 2


@pytest.mark.parametrize("version, ok", [("2.13.0+cpu", True), ("2.6.0", True),
                                         ("2.5.1", False), ("1.13.1", False), ("3.0.0", False),
                                         ("2.11.0a0+git123", True)])
def test_torch_range_checked_at_import(version, ok):
    # A fresh interpreter whose torch reports `version`: importing gemini.torch
    # either works or fails with an ImportError naming the supported range.
    code = ("import sys, torch; torch.__version__ = %r\n"
            "try:\n"
            "    import gemini.torch\n"
            "    print('imported')\n"
            "except ImportError as e:\n"
            "    print('refused:', e)\n") % version
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if ok:
        assert out.stdout.strip() == "imported"
    else:
        assert out.stdout.startswith("refused: gemini supports torch >=2.6,<3"), out.stdout
        assert version in out.stdout


def test_no_torch_gives_clear_error(tmp_path):
    # A torch that cannot be imported: the error says what to install.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "try:\n"
            "    import gemini.torch\n"
            "except ImportError as e:\n"
            "    print(e)\n") % str(tmp_path)
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert "needs torch >=2.6,<3" in out.stdout and "pip install torch==" in out.stdout, out


def test_gemini_finds_its_python(tmp_path):
    # `gemini demo` runs trainers with the Python beside the command (the venv's).
    assert subprocess.run([GEMINI, "demo", "--help"], check=True, capture_output=True,
                          text=True).stdout.count(sys.executable.rsplit("/", 1)[0]) >= 1
