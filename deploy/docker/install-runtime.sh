#!/usr/bin/env bash
# Installs a model service on its base image; used by Dockerfile.asr and Dockerfile.tts:
#   install-runtime.sh module:Class ...   (the model classes that must be real torch modules afterwards)
# * The base image's torch is never replaced: pip resolves with it pinned, and with NGC's own
#   /etc/pip/constraint.txt (NGC >= 25.03) in force. A conflict fails the build; UNPIN="name ..." drops
#   those packages' pins from NGC's file first (deploy/README.md explains when).
# * flash-attn (FLASH_ATTN): auto = the base image's build if it imports, else none (sdpa); 1 = required:
#   installed when missing, and the build fails unless it imports against this torch; 0 = not installed.
# * NODEPS_EXTRA: requirement specifiers installed without their dependencies (see the Dockerfile).
# * Finally the build fails unless transformers sees torch and every named class is real (not a dummy).
set -euo pipefail

FLASH_ATTN="${FLASH_ATTN:-auto}"
FLASH_ATTN_VERSION="${FLASH_ATTN_VERSION:-2.8.3}"
CPU_TORCH="${CPU_TORCH:-0}"
CPU_TORCH_VERSION="${CPU_TORCH_VERSION:-2.9.1}"
UNPIN="${UNPIN:-}"
NGC_CONSTRAINTS="${NGC_CONSTRAINTS:-/etc/pip/constraint.txt}"

case "$FLASH_ATTN" in
  0 | 1 | auto) ;;
  *) echo "FLASH_ATTN must be 0, 1 or auto (got '$FLASH_ATTN')" >&2; exit 2 ;;
esac

if [ "$CPU_TORCH" = "1" ]; then
  pip install "torch==${CPU_TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu
fi

# Keep the image's torch exactly: whatever pip resolves must accept it.
python -c 'import importlib.metadata as m; print("torch==" + m.version("torch"))' > /tmp/keep-torch.txt
constraints=(-c /tmp/keep-torch.txt)
if [ -f "$NGC_CONSTRAINTS" ]; then
  for name in $UNPIN; do
    pattern=$(printf '%s' "$name" | sed 's/[-_.]/[-_.]/g')  # huggingface-hub matches huggingface_hub too
    sed -i "/^${pattern}[=<>!~ ]/Id" "$NGC_CONSTRAINTS"
    echo "unpinned ${name} in ${NGC_CONSTRAINTS}"
  done
  constraints+=(-c "$NGC_CONSTRAINTS")
fi
echo "resolving against: $(cat /tmp/keep-torch.txt)${UNPIN:+ (unpinned: $UNPIN)} $([ -f "$NGC_CONSTRAINTS" ] && echo "+ $NGC_CONSTRAINTS")"

# Our wheels with their declared dependencies (transformers, accelerate, ...), resolved as above.
pip install "${constraints[@]}" /wheels/*.whl
# Packages whose declared dependencies are never imported (NODEPS_EXTRA="name==version ...").
if [ -n "${NODEPS_EXTRA:-}" ]; then
  # shellcheck disable=SC2086 # a list of requirement specifiers
  pip install "${constraints[@]}" --no-deps $NODEPS_EXTRA
fi

flash_check=report
if [ "$FLASH_ATTN" = "1" ]; then
  flash_check=require
  if ! python -c "import flash_attn" 2>/dev/null; then
    # No wheel matching this torch/CUDA/ABI means a source build (nvcc, an hour or more); a failure fails the build.
    pip install "${constraints[@]}" --no-build-isolation "flash-attn==${FLASH_ATTN_VERSION}"
  fi
fi

python -m vibevoice_api.shared.stack_check "$@" --flash "$flash_check"
