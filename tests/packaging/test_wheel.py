"""The operator's wheel: built from the repository root, it holds the operator and nothing of
envtest, and the operator's command runs in an environment where envtest is not installed.

Both distributions are built the way the issue states it (``pip wheel --no-deps``), without
build isolation (setuptools and wheel come with the test extra), so nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def build_wheel(source: Path, out: Path) -> Path:
    """``pip wheel --no-deps --no-build-isolation source``; the one wheel it writes."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def test_operator_wheel_holds_the_operator_and_no_envtest(tmp_path: Path) -> None:
    wheel = build_wheel(REPO, tmp_path)
    assert wheel.name.startswith("flokoa_controller-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "flokoa_controller/cli.py" in names
    assert "flokoa_controller/controllers/modelprovider.py" in names
    assert [n for n in names if "envtest" in n or n.startswith(("tests/", "flokoa_envtest"))] == []
    metadata = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        .decode()
    )
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    for envtest_only in ("cel-python", "google-re2", "trustme", "jsonschema", "pytest"):
        assert not [r for r in runtime if envtest_only in r], envtest_only


def test_envtest_wheel_holds_envtest_and_no_operator(tmp_path: Path) -> None:
    wheel = build_wheel(REPO / "envtest", tmp_path)
    assert wheel.name.startswith("flokoa_envtest-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "flokoa_envtest/server.py" in names
    assert "flokoa_envtest/fakes/openai.py" in names
    assert [n for n in names if n.startswith(("flokoa_controller/", "tests/"))] == []


def test_operator_command_runs_without_envtest(tmp_path: Path) -> None:
    """A venv with only the operator's wheel installed; its dependencies are borrowed from
    this environment's site-packages through a path entry (no ``.pth`` hook of that
    directory runs, so this environment's editable envtest is not importable there)."""
    wheel = build_wheel(REPO, tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "dependencies.pth").write_text(deps + "\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )

    probe = run("-c", "import flokoa_controller.cli, aiohttp; import flokoa_envtest")
    assert "No module named 'flokoa_envtest'" in probe.stderr
    where = run("-c", "import flokoa_controller; print(flokoa_controller.__file__)")
    assert where.stdout.startswith(str(venv)), "the operator must come from the wheel"

    help_ = run("-m", "flokoa_controller", "run", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "--kubeconfig" in help_.stdout
    assert "--allow-destinations" in help_.stdout

    for command in ("dev", "envtest"):
        missing = run("-m", "flokoa_controller", command, "--port", "0")
        assert missing.returncode == 2
        hint = missing.stderr.strip()
        assert "\n" not in hint
        assert f"flokoa-controller {command}:" in hint
        assert "pip install ./envtest" in hint

    # A broken envtest install (its CLI imports what is not there) must not take `run` down:
    # `dev` says in one line what failed instead.
    broken = Path(purelib) / "flokoa_envtest"
    broken.mkdir()
    (broken / "__init__.py").write_text("")
    (broken / "cli.py").write_text("import flokoa_envtest_dependency_that_is_missing\n")
    help_ = run("-m", "flokoa_controller", "run", "--help")
    assert help_.returncode == 0, help_.stderr
    dev = run("-m", "flokoa_controller", "dev")
    assert dev.returncode == 2
    hint = dev.stderr.strip()
    assert "\n" not in hint
    assert hint.startswith("flokoa-controller dev: flokoa-envtest cannot be imported:")
    assert "flokoa_envtest_dependency_that_is_missing" in hint
