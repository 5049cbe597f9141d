#!/usr/bin/env bash
# Usage: bash scripts/install_system_deps.sh [--help]
#
# Installs the Debian packages Maya ASR needs when they are missing: espeak-ng (speech for the
# demo corpus), sox, libsndfile1 (audio I/O), aspell and its Indic dictionaries (real words for
# the demo corpus) and the en/de/fr/es/it/nl ones (the demo encoder's pretraining corpus,
# make demo-pretrain). Does nothing when all are present, so a second run is instant. Without
# apt-get or root it prints the command to run instead and exits 1.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

PACKAGES=(espeak-ng sox libsndfile1 aspell
          aspell-hi aspell-bn aspell-ta aspell-te aspell-mr aspell-gu aspell-kn aspell-ml
          aspell-pa aspell-or
          aspell-en aspell-de aspell-fr aspell-es aspell-it aspell-nl)

if ! command -v dpkg-query >/dev/null 2>&1; then
  for cmd in espeak-ng sox aspell; do
    command -v "$cmd" >/dev/null 2>&1 || {
      echo "system-deps: '$cmd' is missing and this is not a Debian system;" \
           "install espeak-ng, sox, libsndfile and aspell (with hi bn ta te mr gu kn ml pa or" \
           "en de fr es it nl dictionaries) with your package manager." >&2
      exit 1
    }
  done
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "system-deps: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo)
else
  echo "system-deps: cannot install without root. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: done"
