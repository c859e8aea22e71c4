#!/usr/bin/env bash
# Brings up the local stack, starts the server and a worker, and uploads a generated
# 300 MB file and a short video through the real flow (signed parts straight to the
# store), printing progress, every processing stage and the resulting metadata,
# media facts and previews. Stops the server and worker when done.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
deploy/local/stack.sh up
set -a
# shellcheck disable=SC1090
. "$(deploy/local/stack.sh env)"
set +a

cargo build -q -p upload-server -p upload-worker -p upload-client
bin=$repo/target/debug
dir=$(dirname "$(deploy/local/stack.sh env)")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export UPLOAD_GRPC_ADDR=127.0.0.1:$port

# The server speaks TLS with a certificate of a local CA (made once, kept); the CLI
# trusts that CA (--ca-cert).
"$bin/upload-server" dev-certs --dir "$dir/tls"
export UPLOAD_TLS_CERT=$dir/tls/server.pem UPLOAD_TLS_KEY=$dir/tls/server-key.pem
"$bin/upload-server" serve > "$dir/demo-server.log" 2>&1 &
server=$!
"$bin/upload-worker" > "$dir/demo-worker.log" 2>&1 &
worker=$!
trap 'kill $server $worker 2>/dev/null || true; wait 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

file=$dir/demo-300MB.bin
if [ ! -f "$file" ]; then
  echo "generating a 300 MB file at $file"
  head -c 300000000 /dev/urandom > "$file"
fi
echo "local md5    $(md5sum "$file" | cut -d' ' -f1)"
echo "local sha256 $(sha256sum "$file" | cut -d' ' -f1)"

token=$("$bin/upload-server" mint-token --seller demo-seller --group standard \
  --signing-key "$dir/keys/signing-key.pk8")
"$bin/upload" --endpoint "https://127.0.0.1:$port" --ca-cert "$dir/tls/ca.pem" --token "$token" \
  put "$file" --content-type application/octet-stream --part-size 16777216 --concurrency 4

# A short video, made here with ffmpeg: the scan, ffprobe's media facts and the
# previews (a poster and a low-resolution clip) follow on the same stream.
video=$dir/demo-trailer.mp4
if [ ! -f "$video" ]; then
  echo "generating a 10 s video at $video"
  ffmpeg -v error -y -f lavfi -i testsrc2=duration=10:size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:duration=10 -c:v libx264 -preset veryfast \
    -pix_fmt yuv420p -c:a aac -shortest "$video"
fi
"$bin/upload" --endpoint "https://127.0.0.1:$port" --ca-cert "$dir/tls/ca.pem" --token "$token" \
  put "$video" --content-type video/mp4 --concurrency 4
