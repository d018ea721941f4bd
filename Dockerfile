# The image every Airflow component and the sandbox run: the official image plus our pinned stack.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt requirements-cluster.txt constraints.txt /opt/apisync/
RUN pip install --no-cache-dir -r /opt/apisync/requirements.txt -r /opt/apisync/requirements-cluster.txt \
    -c /opt/apisync/constraints.txt
# The `apisync` connection type (provider info only; the library is the mounted plugins/ folder).
COPY provider /opt/apisync/provider
RUN pip install --no-cache-dir --no-deps /opt/apisync/provider
