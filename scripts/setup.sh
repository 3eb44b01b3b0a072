#!/usr/bin/env bash
# One command from a fresh clone to a first answer: venv, dependencies (llama.cpp compiled for
# this CPU family), models pulled and verified, seeds ingested, one sample question answered.
# Safe to run again: every step skips work that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

# The default llama.cpp build (GGML_NATIVE=ON) can crash on CPUs that report instructions the
# sandbox forbids (AMX), and a build with AVX-512 stops with an illegal instruction on CPUs
# without it (most laptops: Intel client CPUs since Alder Lake, AMD before Zen 4). So: a portable
# x86-64 build with exactly the vector extensions this CPU reports. Override CMAKE_ARGS on another
# CPU (e.g. Apple silicon: CMAKE_ARGS="-DGGML_METAL=on").
if [ -z "${CMAKE_ARGS:-}" ] && [ "$(uname -m)" = "x86_64" ]; then
  cpu_flags=" $(grep -m1 '^flags' "${CPUINFO:-/proc/cpuinfo}" 2>/dev/null | cut -d: -f2) "
  CMAKE_ARGS="-DGGML_NATIVE=OFF"
  for ext in avx avx2 fma f16c avx512f; do
    name=$(echo "${ext%f}" | tr a-z A-Z)  # avx512f -> AVX512
    case "$cpu_flags" in *" $ext "*) CMAKE_ARGS="$CMAKE_ARGS -DGGML_$name=ON" ;; *) CMAKE_ARGS="$CMAKE_ARGS -DGGML_$name=OFF" ;; esac
  done
  export CMAKE_ARGS
fi
if [ "${1:-}" = "--print-cmake-args" ]; then  # what this CPU gets, building nothing (tests/test_setup.py)
  echo "${CMAKE_ARGS:-}"
  exit 0
fi
echo "==> llama.cpp build flags: ${CMAKE_ARGS:-(llama.cpp defaults)}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "==> installing dependencies (the first build of llama-cpp-python takes a few minutes)"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test,bench]"

echo "==> fetching models (once)"
"$VENV/bin/rag" models pull --all

echo "==> indexing the seed papers"
"$VENV/bin/rag" ingest seeds/

echo "==> a sample question"
"$VENV/bin/rag" ask "${RAG_SAMPLE_QUESTION:-What speedups does data-efficient augmentation achieve on CIFAR10 and SVHN?}"
