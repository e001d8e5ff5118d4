#!/bin/sh
# Ollama opens its port before the model is in GPU memory, so a probe on it passes too early (D2).
# Here Ollama listens on 127.0.0.1 only; we preload the model (keep_alive -1 keeps it resident),
# and only then open $PORT to the outside. The startup probe therefore passes once the model is loaded.
set -eu
PORT="${PORT:-8080}"
ollama serve &
ollama_pid=$!
until curl -fs "http://$OLLAMA_HOST/api/version" >/dev/null 2>&1; do
  kill -0 "$ollama_pid" 2>/dev/null || exit 1
  sleep 0.2
done
echo "entrypoint: preloading $OLLAMA_MODEL"
curl -fs "http://$OLLAMA_HOST/api/generate" -d "{\"model\": \"$OLLAMA_MODEL\", \"keep_alive\": -1}" >/dev/null
echo "entrypoint: model loaded; serving on :$PORT"
exec socat "TCP-LISTEN:$PORT,fork,reuseaddr" "TCP:$OLLAMA_HOST"
