#!/bin/sh
# Shared entrypoint of the serving images: fetch the model if the loading method asks for it,
# restore a build-time prompt cache (llama.cpp, practices B4/R2), then run the engine ("$@").
set -eu
PORT="${PORT:-8080}"

# The path the engine is started with: the value of -m (llama.cpp) or --model (vLLM) in its command line.
engine_model_path() {
  prev=""
  for a in "$@"; do
    case "$prev" in -m | --model) printf '%s\n' "$a"; return 0 ;; esac
    case "$a" in --model=*) printf '%s\n' "${a#--model=}"; return 0 ;; esac
    prev="$a"
  done
  return 1
}

if [ -n "${MODEL_DOWNLOAD_URI:-}" ]; then
  # gcs-download: gs://bucket/<object_prefix>/* must arrive at exactly the path the engine loads.
  # MODEL_LAYOUT=directory (vLLM): the prefix *is* the model directory (config.json, *.safetensors, tokenizer),
  # so it is copied to the engine's --model path. MODEL_LAYOUT=file (llama.cpp): the prefix holds the GGUF,
  # so it is copied into the folder of the engine's -m path. Without a model flag: into MODEL_DIR.
  model_path="$(engine_model_path "$@" || true)"
  dest="${MODEL_DIR:?MODEL_DIR is not set}"
  if [ -n "$model_path" ]; then
    if [ "${MODEL_LAYOUT:-file}" = "directory" ]; then dest="$model_path"; else dest="$(dirname "$model_path")"; fi
  fi
  mkdir -p "$dest"
  echo "entrypoint: copying $MODEL_DOWNLOAD_URI to $dest"
  if command -v gcloud >/dev/null 2>&1; then
    # rsync copies the prefix's *contents* (nested folders too) into dest, like the Python path below.
    gcloud storage rsync --recursive "${MODEL_DOWNLOAD_URI%/\*}" "$dest"
  else  # images with Python instead of the CLI: the Storage API's transfer manager (also parallel)
    python3 "$(dirname "$0")/download_gcs.py" "$MODEL_DOWNLOAD_URI" "$dest"
  fi
fi
if [ -n "${MODEL_DOWNLOAD_URL:-}" ]; then
  # internet: the seed advises a bucket of your own instead (hosts can be slow, down, or change the model).
  echo "entrypoint: downloading $MODEL_DOWNLOAD_URL (needs Cloud NAT)"
  curl -fL --retry 3 -o "$MODEL_DIR/$(basename "$MODEL_DOWNLOAD_URL")" "$MODEL_DOWNLOAD_URL"
fi

SLOTS="${PROMPT_CACHE_DIR:-}"
if [ -n "$SLOTS" ] && ls "$SLOTS"/slot*.bin >/dev/null 2>&1; then
  # Start the engine, wait until it reports healthy, restore every saved slot with the same flags
  # it was saved with (R2), then stay in the foreground as the engine.
  "$@" &
  engine=$!
  trap 'kill -TERM $engine 2>/dev/null' TERM INT
  until curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
    kill -0 "$engine" 2>/dev/null || exit 1
    sleep 0.2
  done
  for f in "$SLOTS"/slot*.bin; do
    n="$(basename "$f" .bin)"; n="${n#slot}"
    curl -fs -X POST "http://127.0.0.1:$PORT/slots/$n?action=restore" \
      -H 'Content-Type: application/json' -d "{\"filename\": \"slot$n.bin\"}" >/dev/null \
      && echo "entrypoint: restored prompt cache slot $n"
  done
  wait "$engine"
  exit $?
fi
exec "$@"
