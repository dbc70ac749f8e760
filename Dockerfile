# The modelcat image: `modelcat replica` and `modelcat router` for the kubernetes target (and
# `modelcat fetch`, its init container), and a SageMaker inference container as it is: SageMaker runs
# `docker run <image> serve`, and `modelcat serve` verifies /opt/ml/model's artifact against
# MODELCAT_DIGEST, then answers /ping and /invocations on port 8080 (or SAGEMAKER_BIND_TO_PORT).
# Build it from the repository root and push it where the environment's kubernetes.image points:
#   docker build -t registry.example.com/modelcat/modelcat:0.4.0 . && docker push ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package with the versions the test suite runs against (no dev or targets extras).
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY catalog ./catalog
RUN pip install -c constraints.txt . && rm -rf /src

# Not root: the synthesized pods run as uid/gid 10001 with a read-only root filesystem; the
# artifact and /tmp are emptyDir volumes.
RUN groupadd --system --gid 10001 modelcat \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/modelcat --create-home modelcat
USER 10001:10001
WORKDIR /home/modelcat

EXPOSE 8080
ENTRYPOINT ["modelcat"]
CMD ["--help"]
