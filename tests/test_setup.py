"""Fitting a laptop (issue #16, items 1 and 7): scripts/setup.sh builds llama.cpp for the CPU it
runs on (a binary built with AVX-512 stops with an illegal instruction on CPUs without it, which is
most laptops) and `rag doctor` compares the two; `rag --version` and shell completion."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup.sh"
LAPTOP = "flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2 vaes\n"  # Alder Lake: no avx512f
SERVER = "flags\t\t: fpu sse2 avx f16c fma avx2 avx512f avx512vl avx512_vnni\n"
OLD = "flags\t\t: fpu sse2 sse4_2\n"

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="the flags are chosen on x86-64 only")


def _args(tmp_path: Path, cpuinfo: str) -> str:
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo)
    env = {k: v for k, v in os.environ.items() if k != "CMAKE_ARGS"} | {"CPUINFO": str(info)}
    done = subprocess.run(["bash", str(SETUP), "--print-cmake-args"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_laptop_without_avx512_gets_no_avx512(tmp_path):
    args = _args(tmp_path, LAPTOP)
    assert "-DGGML_AVX512=OFF" in args and "-DGGML_AVX2=ON" in args and "-DGGML_NATIVE=OFF" in args


def test_a_cpu_with_avx512_keeps_it(tmp_path):
    assert "-DGGML_AVX512=ON" in _args(tmp_path, SERVER)


def test_an_old_cpu_gets_no_avx_at_all(tmp_path):
    args = _args(tmp_path, OLD)
    assert all(f"-DGGML_{x}=OFF" in args for x in ("AVX", "AVX2", "FMA", "F16C", "AVX512"))


def test_given_cmake_args_win(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(SERVER)
    env = dict(os.environ, CPUINFO=str(info), CMAKE_ARGS="-DGGML_METAL=on")
    done = subprocess.run(["bash", str(SETUP), "--print-cmake-args"], env=env, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "-DGGML_METAL=on"


def test_doctor_compares_the_build_with_the_cpu(tmp_path):
    from rag.doctor import build_check

    here = build_check()
    assert here.ok, here.detail  # setup.sh built for this very CPU
    assert "built with" in here.detail and "this CPU has" in here.detail
    old = tmp_path / "cpuinfo"
    old.write_text(OLD)
    there = build_check(str(old))
    assert not there.ok and "which this CPU lacks" in there.detail and "PIP_NO_CACHE_DIR=1 bash scripts/setup.sh" in there.fix


def test_doctor_prints_the_build_line(runner):
    from rag.cli import app

    result = runner.invoke(app, ["doctor"])
    assert "llama.cpp build" in result.stdout


def test_version_and_shell_completion(runner):
    from importlib.metadata import version

    from rag.cli import app

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"rag (paper-rag) {version('paper-rag')}"
    script = runner.invoke(app, ["--show-completion", "bash"], prog_name="rag")
    assert script.exit_code == 0 and "_rag_completion" in script.stdout and "complete " in script.stdout
