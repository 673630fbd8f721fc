"""Storage: line protocol, InfluxDB writers (v1 /write, v2 client) and the InfluxQL reader."""
