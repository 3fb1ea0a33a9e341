# walcount image: built with the -dev packages, run on a slim Debian with only
# the runtime libraries, as an unprivileged user.
#
#   docker build -t walcount .        (or: docker-compose build)
#
# Both stages use one Debian release, so the binary finds the same library
# sonames it was linked against. Only classic-builder syntax is used (no
# COPY --chmod, RUN --mount or heredocs): Debian's docker-compose 1.29 builds
# without BuildKit. The build context is an allowlist, see .dockerignore.
ARG DEBIAN_TAG=12.13-slim

FROM debian:${DEBIAN_TAG} AS build
# gcc does not pull libc6-dev without recommends; pg_config (libpq-dev)
# gives the Makefile its include directory.
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		gcc libc6-dev make libpq-dev libjansson-dev libyaml-dev libmicrohttpd-dev \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Not -j: the Makefile's sqlfiles.c/sqlfiles.h rule races under parallel make.
RUN make bin/walcount && ./bin/walcount --version

FROM debian:${DEBIAN_TAG}
# libpq5, libjansson4, libyaml-0-2 and libmicrohttpd12 are what bin/walcount
# links (ldd); ca-certificates for sslmode=verify-full against a remote
# server. No curl or wget: the health check speaks HTTP through bash.
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		libpq5 libjansson4 libyaml-0-2 libmicrohttpd12 ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 walcount \
	&& useradd --system --uid 10001 --gid walcount --no-create-home \
		--home-dir /nonexistent --shell /usr/sbin/nologin walcount
COPY --from=build /src/bin/walcount /usr/local/bin/walcount
COPY docker/walcount/healthcheck.sh /usr/local/bin/walcount-healthcheck
# The documented defaults (its DSN names `make run`'s local server: set
# WALCOUNT_DATABASE_DSN); docker-compose.yml mounts the project's
# config.yaml over it read-only and sets the DSN.
COPY config.yaml /etc/walcount/config.yaml
# Inside a container the metrics listener must not be loopback-only, or
# neither Prometheus nor the port mapping reaches it.
ENV WALCOUNT_CONFIG=/etc/walcount/config.yaml \
	WALCOUNT_METRICS_LISTEN=0.0.0.0:9187
# numeric, so orchestrators can verify it is not root (runAsNonRoot)
USER 10001:10001
EXPOSE 9187
# /healthz answers 200 while walcount streams; a fresh slot's initial load
# runs before that, hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
	CMD ["bash", "/usr/local/bin/walcount-healthcheck"]
# walcount handles SIGTERM itself: it applies and confirms the open batch,
# then exits 0 (give it time: stop_grace_period in docker-compose.yml).
ENTRYPOINT ["walcount"]
CMD ["run", "--config", "/etc/walcount/config.yaml"]
