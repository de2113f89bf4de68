#!/bin/sh
# Makes docs/salesforce-panel.png: renders bantPanel with the Jest fixtures into build/salesforce-panel.html
# (scripts/render-panel.render.js), then captures it with headless Chromium.
# Needs `npm ci` in config/salesforce and chromium (Debian: apt-get install -y chromium).
set -eu
cd "$(dirname "$0")/.."
npx jest -c scripts/jest.render.config.js
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome)}"
OUT="$(cd ../.. && pwd)/docs/salesforce-panel.png"
"$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files \
    --window-size="${WIDTH:-850},${HEIGHT:-550}" --screenshot="$OUT" "file://$(pwd)/build/salesforce-panel.html"
echo "wrote $OUT"
