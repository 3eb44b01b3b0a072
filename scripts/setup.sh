#!/usr/bin/env bash
# One command from a fresh clone to a first answer: venv, dependencies (llama.cpp compiled for
# this CPU family), models pulled and verified, seeds ingested, one sample question answered.
# Safe to run again: every step skips work that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

# The default llama.cpp build (GGML_NATIVE=ON) can crash on CPUs that report instructions the
# sandbox forbids (AMX); this portable x86-64 build is what was verified. Override CMAKE_ARGS
# on another CPU (e.g. Apple silicon: CMAKE_ARGS="-DGGML_METAL=on").
if [ -z "${CMAKE_ARGS:-}" ] && [ "$(uname -m)" = "x86_64" ]; then
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON"
fi

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
