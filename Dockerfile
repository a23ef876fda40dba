# A CPU image of this package whose default command serves one TFF worker for
# `run_experiment --workers=...` (see README, "Several machines"):
#   docker build -t tff-experiments .
#   docker run --rm -p 8000:8000 -v /shared/cache:/shared/cache tff-experiments --port=8000
# The same image runs the driver (as your user, results on a mount): docker run --user "$(id -u)" \
#   -v "$PWD/results:/app/results" -v /shared/cache:/shared/cache --entrypoint python tff-experiments \
#   -m launch.run_experiment --workers=... --cache_dir=/shared/cache ...
# Mount the client-file cache at the same path as the driver's --cache_dir: workers read each
# client's file at the path the driver names.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /app
# The pinned set, --no-deps as in the Makefile: TFF 0.87's jaxlib==0.4.14 pin is served by no
# registry (jaxlib 0.4.13 runs it).
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps -r requirements.lock
COPY setup.py ./
COPY datasets/ datasets/
COPY launch/ launch/
COPY tff_experiments/ tff_experiments/
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

# The worker runs any TensorFlow graph it is sent over unauthenticated gRPC: publish the port
# only to the driver (a private network, or the NetworkPolicy in deploy/k8s).
EXPOSE 8000
USER nobody
ENTRYPOINT ["python", "-m", "launch.worker"]
CMD ["--port=8000"]
