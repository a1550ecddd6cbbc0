# The gateway as an installed wheel (the same way scripts/check-install.sh proves it runs): no checkout in
# the image, the packaged routes, templates, schemas and demo registry inside site-packages, a dedicated
# non-root user (uid 10001, owner of /data, mode 0700), the store on /data, the patient-hash secret on
# /data/secret (mount it as its own volume so a copy of the store alone reveals nothing).
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11-slim
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && useradd --system --uid 10001 --home-dir /data --create-home gateway \
    && install -d -o gateway -g gateway -m 0700 /data/secret \
    && chmod 0700 /data
USER gateway
WORKDIR /data
ENV GATEWAY_STORE_URL=sqlite:////data/gateway.sqlite3 \
    GATEWAY_SECRET_FILE=/data/secret/gateway.secret
ENTRYPOINT ["gateway"]
CMD ["run"]
