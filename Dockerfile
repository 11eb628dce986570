# The image every cluster node runs: Ray's CUDA image (Python 3.11, Ray, non-root user "ray")
# plus this project, installed with `pip install .`; torch comes from the standard index (its
# Linux wheels carry their own CUDA libraries; the host only needs the NVIDIA driver).
# Used by cluster/deploy/aws-gpu.yaml (docker.image) and cluster/deploy/k8s/ (image:).
#
#   docker build -t mixup-sweeps:0.1.0 .
#
# No port is published or EXPOSEd: on a cluster the dashboard and MLflow are reached through SSH
# tunnels or `kubectl port-forward` (cluster/deploy/README.md).

ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-gpu

# rayproject/ray runs as "ray" (uid 1000, gid 100 "users"), which owns its Python environment.
USER ray
WORKDIR /home/ray/mixup-sweeps

# Token auth is Ray's default for new clusters; say it anyway so a node without a token fails
# to start instead of running open.
ENV RAY_AUTH_MODE=token \
    RAY_USAGE_STATS_ENABLED=0 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first (torch and friends, several GB), so that a code change rebuilds one small
# layer only. The preinstalled Ray satisfies ray[tune] and is kept.
COPY --chown=ray:users pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && python -m pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY --chown=ray:users . .
RUN python -m pip install --no-deps . \
    && mixup-sweep --help > /dev/null

# The image's default command; KubeRay and the cluster launcher start Ray themselves.
CMD ["mixup-sweep", "--help"]
