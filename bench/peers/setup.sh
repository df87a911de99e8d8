#!/bin/sh
# Installs the Python peers that bench/run.R compares lcnn with (tf-keras's
# LocallyConnected layers, PyTorch, JAX; all on the CPU) into a virtual
# environment. Bench tooling only: the lcnn package never needs Python.
#
# Usage: sh bench/peers/setup.sh
# Environment (all optional):
#   LCNN_PEERS_VENV     where to create the environment (default bench/peers/.venv,
#                       which bench/run.R looks for; git- and R-build-ignored)
#   LCNN_PEERS_PYTHON   the Python that creates it (default python3; 3.9-3.12,
#                       the versions tensorflow-cpu 2.18 has wheels for)
#   LCNN_PEERS_TF_FROM  an existing environment that already has tensorflow and
#                       tf-keras 2.18 (e.g. /opt/kerasenv): the new environment
#                       reads its packages instead of downloading them again, and
#                       pip keeps their versions (numpy among them) unchanged.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
venv=${LCNN_PEERS_VENV:-$here/.venv}
python=${LCNN_PEERS_PYTHON:-python3}
tf_from=${LCNN_PEERS_TF_FROM:-}
# tf-keras 2.18 is the last Keras 2 with the LocallyConnected layers that
# lcnn mirrors (Keras 3 dropped them); tf-keras needs the same TF minor.
tf_pins='tensorflow-cpu==2.18.* tf-keras==2.18.*'

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $python"
  "$python" -m venv "$venv"
fi
pip="$venv/bin/python -m pip"
$pip install --quiet --upgrade pip

constraints=""
if [ -n "$tf_from" ]; then
  tf_site=$("$tf_from/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  own_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "reusing TensorFlow from $tf_site"
  echo "$tf_site" > "$own_site/lcnn-peers-tf.pth"
  # Pin everything the reused environment has, so pip installs torch and jax
  # around it rather than upgrading a shared dependency in front of it.
  constraints="$venv/tf-from-constraints.txt"
  "$tf_from/bin/python" -m pip freeze --exclude-editable > "$constraints"
  tf_pins=""
fi

# PyTorch's CPU-only wheels are far smaller than PyPI's default build, which
# brings the CUDA libraries; use them when their index can be reached.
cpu_index=https://download.pytorch.org/whl/cpu
if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$cpu_index/torch/', timeout=15)" 2>/dev/null; then
  echo "installing torch from the PyTorch CPU index"
  $pip install ${constraints:+-c "$constraints"} --index-url "$cpu_index" torch
else
  echo "the PyTorch CPU index is not reachable: installing PyPI's torch (with its CUDA libraries, unused here)"
fi

# shellcheck disable=SC2086  # tf_pins is a list of requirements
$pip install ${constraints:+-c "$constraints"} $tf_pins torch 'jax[cpu]'

"$venv/bin/python" "$here/peers.py" --versions
echo "peers installed in $venv"
