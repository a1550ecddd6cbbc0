FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY schemas ./schemas
COPY templates ./templates
COPY routes ./routes
COPY fixtures ./fixtures
RUN pip install --no-cache-dir .
ENV GATEWAY_STORE_URL=sqlite:////data/gateway.sqlite3 \
    GATEWAY_SCHEMA_DIR=/app/schemas \
    GATEWAY_TEMPLATE_DIR=/app/templates
ENTRYPOINT ["gateway"]
CMD ["run"]
