#!/usr/bin/env bash
# Rebuild assets/fonts/wqy-microhei-gb2312-l1.ttf.gz, the CJK font quote PDFs embed, from
# Debian's fonts-wqy-microhei (WenQuanYi Micro Hei, Apache-2.0) with fontTools' pyftsubset.
# Only needed to change the character set; the result is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download fonts-wqy-microhei >/dev/null && dpkg-deb -x fonts-wqy-microhei_*.deb x)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "fonttools==4.*"
python3 scripts/quote-font-chars.py "$@" >"$work/chars.txt"
"$work/venv/bin/pyftsubset" "$work/x/usr/share/fonts/truetype/wqy/wqy-microhei.ttc" --font-number=0 \
  --text-file="$work/chars.txt" --output-file="$work/sub.ttf" \
  --layout-features='' --no-hinting --drop-tables+=GSUB,GPOS,GDEF --name-IDs='*' --name-legacy
gzip -9 -n -c "$work/sub.ttf" >assets/fonts/wqy-microhei-gb2312-l1.ttf.gz
ls -l assets/fonts/wqy-microhei-gb2312-l1.ttf.gz
