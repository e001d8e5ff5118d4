#!/bin/sh
# Shared entrypoint of the serving images: fetch the model if the loading method asks for it,
# restore a build-time prompt cache (llama.cpp, practices B4/R2), then run the engine ("$@").
set -eu
PORT="${PORT:-8080}"

if [ -n "${MODEL_DOWNLOAD_URI:-}" ]; then
  # gcs-download: gcloud storage cp downloads objects (and slices of large ones) in parallel (L2).
  echo "entrypoint: copying $MODEL_DOWNLOAD_URI to $MODEL_DIR"
  if command -v gcloud >/dev/null 2>&1; then
    gcloud storage cp --recursive "$MODEL_DOWNLOAD_URI" "$MODEL_DIR/"
  else  # images with Python instead of the CLI: the Storage API's transfer manager (also parallel)
    python3 /opt/llm/download_gcs.py "$MODEL_DOWNLOAD_URI" "$MODEL_DIR"
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
