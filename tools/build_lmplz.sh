#!/usr/bin/env bash
# Builds KenLM's estimator lmplz from the kenlm source distribution (the PyPI wheel is
# query-only) and prints its path. The binary is cached: later runs print it at once.
#
#   LMPLZ=$(tools/build_lmplz.sh) && export LMPLZ    # enables tests/ngram/test_lmplz_parity.py
#
# Needs cmake, a C++ compiler, zlib and Boost (program_options, system, thread), e.g. on Debian
# `apt-get install cmake g++ zlib1g-dev libboost-program-options-dev libboost-system-dev
# libboost-thread-dev`. Set PYRO_AR_TOOLS to choose the cache folder.
set -euo pipefail
tools="${PYRO_AR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/pyro_ar}"
binary="$tools/kenlm/bin/lmplz"
if [ -x "$binary" ]; then
    echo "$binary"
    exit 0
fi
python=$(command -v "${PYTHON:-python3}") || { echo "build_lmplz: no Python" >&2; exit 1; }
for tool in cmake g++; do
    command -v "$tool" > /dev/null || { echo "build_lmplz: $tool is missing" >&2; exit 1; }
done
if [ ! -d /usr/include/boost/program_options ]; then
    echo "build_lmplz: the Boost headers (libboost-program-options-dev...) are missing" >&2
    exit 1
fi
work=$(mktemp -d)
fail() {
    echo "build_lmplz: $1 failed; logs in $work" >&2
    exit 1
}
cd "$work"
# pip prepares the sdist's metadata, which needs setuptools and wheel: a throwaway environment
{ "$python" -m venv venv && venv/bin/pip install --quiet setuptools wheel &&
    venv/bin/pip download --quiet --no-deps --no-binary :all: --no-build-isolation kenlm; } \
    > download.log 2>&1 || fail "downloading the kenlm sources"
tar xzf kenlm-*.tar.gz || fail "unpacking the kenlm sources"
source=$(find . -maxdepth 1 -type d -name "kenlm-*" | head -n 1)
mkdir "$source/build"
(cd "$source/build" && cmake -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=7 ..) \
    > cmake.log 2>&1 || fail "cmake"
(cd "$source/build" && make -j"$(nproc)" lmplz) > make.log 2>&1 || fail "make"
mkdir -p "$tools/kenlm/bin"
cp "$source/build/bin/lmplz" "$binary.tmp"  # then renamed: never a partial binary
mv "$binary.tmp" "$binary"
cd / && rm -rf "$work"
echo "$binary"
