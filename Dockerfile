# The modelcat image, in two flavours built from one Dockerfile (from the repository root):
#
# - the default (last) stage, for the kubernetes target: `modelcat replica` and `modelcat router`, and
#   `modelcat fetch` as the init container; it runs as uid/gid 10001, as the synthesized pods require.
#     docker build -t registry.example.com/modelcat/modelcat:0.4.0 . && docker push ...
# - `--target sagemaker`, for the sagemaker target: SageMaker runs `docker run <image> serve`, and
#   `modelcat serve` verifies /opt/ml/model's artifact against MODELCAT_DIGEST, then answers /ping and
#   /invocations on port 8080 (or SAGEMAKER_BIND_TO_PORT). SageMaker expects containers to run as root
#   (its downloaded model data is root's), so this stage keeps the root user.
#     docker build --target sagemaker -t <account>.dkr.ecr.<region>.amazonaws.com/modelcat:0.4.0 . && docker push ...
FROM python:3.11-slim AS sagemaker

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package with the versions the test suite runs against (no dev or targets extras).
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY catalog ./catalog
RUN pip install -c constraints.txt . && rm -rf /src
WORKDIR /opt/program

EXPOSE 8080
ENTRYPOINT ["modelcat"]
CMD ["--help"]

FROM sagemaker AS kubernetes

# Not root: the synthesized pods run as uid/gid 10001 with a read-only root filesystem; the
# artifact and /tmp are emptyDir volumes.
RUN groupadd --system --gid 10001 modelcat \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/modelcat --create-home modelcat
USER 10001:10001
WORKDIR /home/modelcat
