#!/usr/bin/env bash
# Installs the real programs the integration tests and benchmarks drive (Debian/Ubuntu, as root or via sudo).
# Idempotent: does nothing when every binary is already on PATH.
set -euo pipefail

# binary:package pairs
deps=(
  docker-registry:docker-registry
  skopeo:skopeo
  containerd:containerd
  ctr:containerd
  runc:runc
  umoci:umoci
  htpasswd:apache2-utils
  jq:jq
  podman:podman
  chromium:chromium
)

missing=()
for pair in "${deps[@]}"; do
  bin=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all test dependencies present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing packages (${missing[*]}) and apt-get is not available; install them by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update; then
  echo "install-test-deps: apt-get update failed" >&2
  exit 1
fi
# podman pulls in its runtime helpers only as recommends; name them so --no-install-recommends still works.
extra=()
case " ${missing[*]} " in *" podman "*) extra+=(crun conmon uidmap) ;; esac
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" "${extra[@]}"; then
  echo "install-test-deps: apt-get install ${missing[*]} failed" >&2
  exit 1
fi

for pair in "${deps[@]}"; do
  bin=${pair%%:*}
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "install-test-deps: $bin still missing after install" >&2
    exit 1
  fi
done
echo "install-test-deps: done"
